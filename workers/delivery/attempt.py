"""One delivery attempt: POST the signed event and decide whether it was delivered.

Delivered means a 2xx status arrived within `timeout_seconds` of the attempt's start. The
answer's body is never read (a receiver streaming a large or endless body cannot hold the
worker) and redirects are not followed. No answer within the timeout, or a 2xx that arrives
later than that, counts as a failure: the event is sent again, with the same `webhook-id`,
which receivers deduplicate on. httpx bounds each phase (connect, send, every read) by the
timeout; a receiver trickling its status line byte by byte is caught when it ends, and RQ's
job timeout bounds even that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx


class NotDelivered(RuntimeError):
    """The receiver did not answer 2xx in time; RQ retries the job after its back-off."""


@dataclass(frozen=True)
class Post:
    """What one attempt sends: where (already pinned to a checked address), and what."""

    url: str
    body: bytes
    headers: dict[str, str]
    #: httpx request extensions, e.g. the TLS server name of a pinned address.
    extensions: dict[str, str] = field(default_factory=dict)


def send(post: Post, *, timeout_seconds: float) -> int:
    """POST once; the 2xx status code, or NotDelivered (other network errors propagate as
    httpx's, and are retried the same way)."""
    started = time.monotonic()
    with httpx.Client(timeout=timeout_seconds, follow_redirects=False) as client:
        request = client.build_request(
            "POST", post.url, content=post.body, headers=post.headers, extensions=post.extensions
        )
        try:
            response = client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise NotDelivered(f"no answer within the {timeout_seconds:g} s timeout") from exc
        response.close()  # status and headers are all a delivery needs
    elapsed = time.monotonic() - started
    if not 200 <= response.status_code < 300:
        raise NotDelivered(f"webhook receiver answered {response.status_code}")
    if elapsed > timeout_seconds:
        raise NotDelivered(
            f"webhook receiver answered {response.status_code} after {elapsed:.1f} s, "
            f"past the {timeout_seconds:g} s timeout"
        )
    return response.status_code
