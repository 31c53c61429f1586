"""Webhooks: a signed POST to the clip's `callback_url` when it succeeds or fails.

Body: `{"event_id", "type": "clip.succeeded"|"clip.failed", "clip": {…the clip resource…}}`
(`workers.delivery.events`). Headers: Standard Webhooks' `webhook-id` (the event id),
`webhook-timestamp` and `webhook-signature`, signed with the client's secret from Redis
(and its previous one while a rotation overlaps), plus the deprecated `Clipper-Event-Id`,
`Clipper-Timestamp` and `Clipper-Signature` (`workers.delivery.signatures`,
`workers.delivery.secrets`).

Delivery is its own RQ job on the `webhooks` queue, with back-off retries; the body (with a
fresh download link) is built at each attempt, so no link sits in Redis. A 2xx answer
within CLIPPER_WEBHOOK_TIMEOUT_SECONDS counts as delivered (`workers.delivery.attempt`).
URLs must be http(s) and, unless CLIPPER_WEBHOOK_ALLOW_PRIVATE, every address their host
resolves to must be public (`clipper.addresses`: IPv4 inside IPv6 forms judged too) —
checked at submit and again right before each delivery, which then connects only to the
addresses it checked, one after the other until one answers (SSRF and DNS-rebinding
guard). Redirects are not followed.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit, urlunsplit

import httpx
from redis import Redis
from rq import Retry, get_current_job

from clipper.addresses import is_public_address
from clipper.errors import UnsafeInput
from clipper.settings import Settings, get_settings
from clipper.storage import open_storage
from workers import records
from workers.delivery import attempt, secrets, signatures
from workers.delivery.events import event_body, new_event_id
from workers.presenter import clip_resource
from workers.queues import WEBHOOK_QUEUE, get_queue, redis_connection

#: Back-off between delivery attempts (then the event is dropped and logged by RQ).
WEBHOOK_RETRY_INTERVALS_SECONDS = (10, 60, 300, 1800)
#: RQ's limit for one attempt: far above CLIPPER_WEBHOOK_TIMEOUT_SECONDS (at most 30).
WEBHOOK_JOB_TIMEOUT_SECONDS = 60
#: A delivered event's job is kept an hour (for the dashboard), a failed one a week (for
#: ops to read and retry): never RQ's default of a year in a Redis that does not evict.
WEBHOOK_RESULT_TTL_SECONDS = 3600
WEBHOOK_FAILURE_TTL_SECONDS = 7 * 24 * 3600
MAX_URL_LENGTH = 2048


#: Sent with every delivery.
USER_AGENT = "Clipper-Webhook/1"


def legacy_client_secret(settings: Settings, client: str) -> str:
    """The client's secret of the deprecated `Clipper-Signature` scheme (derived from the
    link secret; shown by the deprecated `GET /v1/webhook-secret`)."""
    return signatures.legacy_secret(settings.link_secret.get_secret_value(), client)


def validate_callback_url(url: str, *, allow_private: bool) -> str:
    """Refuse non-http(s) URLs and (unless allowed) any that resolve to non-public addresses."""
    checked_addresses(url, allow_private=allow_private)
    return url


def checked_addresses(url: str, *, allow_private: bool) -> list[str]:
    """The addresses `url`'s host resolves to, after the same checks (UnsafeInput if not)."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeInput("callback_url is too long", field="callback_url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeInput("callback_url must be an http(s) URL", field="callback_url")
    if parts.username or parts.password:
        raise UnsafeInput("callback_url must not carry credentials", field="callback_url")
    if any(ord(c) < 33 for c in url):
        raise UnsafeInput(
            "callback_url contains blanks or control characters", field="callback_url"
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError) as exc:
        raise UnsafeInput("callback_url host does not resolve", field="callback_url") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise UnsafeInput("callback_url host does not resolve", field="callback_url")
    if not allow_private and not all(is_public_address(a) for a in addresses):
        raise UnsafeInput(
            "callback_url must resolve to public addresses only", field="callback_url"
        )
    return addresses


def pinned_request(url: str, address: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """(URL with the checked address as host, Host header, httpx extensions) so the connection
    goes to the address that was checked — a DNS answer that changes between the check and the
    connect (rebinding) cannot redirect it; TLS still verifies the original host name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = literal + (f":{parts.port}" if parts.port else "")
    pinned = urlunsplit(parts._replace(netloc=netloc))
    host_header = host + (f":{parts.port}" if parts.port else "")
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return pinned, {"Host": host_header}, extensions


def enqueue_delivery(conn: Redis, clip_id: str, event_type: str) -> str:
    """Queue one webhook event for the clip; returns the event id."""
    event_id = new_event_id()
    get_queue(WEBHOOK_QUEUE, conn).enqueue(
        "workers.webhooks.deliver",
        clip_id,
        event_id,
        event_type,
        job_id=event_id,
        job_timeout=WEBHOOK_JOB_TIMEOUT_SECONDS,
        result_ttl=WEBHOOK_RESULT_TTL_SECONDS,
        failure_ttl=WEBHOOK_FAILURE_TTL_SECONDS,
        retry=Retry(
            max=len(WEBHOOK_RETRY_INTERVALS_SECONDS),
            interval=list(WEBHOOK_RETRY_INTERVALS_SECONDS),
        ),
        description=f"webhook {event_type} for {clip_id}",
    )
    return event_id


def signed_headers(
    conn: Redis, settings: Settings, client: str, event_id: str, body: bytes
) -> dict[str, str]:
    """Every header of one attempt: both signature schemes, signed now."""
    now = time.time()
    timestamp = int(now)
    signing = secrets.load(conn, client, now_unix=now).signing(now)
    legacy = legacy_client_secret(settings, client)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signatures.standard_headers(event_id, timestamp, body, signing),
        **signatures.legacy_headers(event_id, timestamp, body, legacy),
    }


def deliver(clip_id: str, event_id: str, event_type: str) -> int:
    """RQ job: POST the signed event; raises (→ retry) on network errors, non-2xx answers and
    answers later than CLIPPER_WEBHOOK_TIMEOUT_SECONDS.

    Queued jobs name it `workers.webhooks.deliver` with these three arguments (so did every
    earlier version): both stay."""
    settings = get_settings()
    conn = redis_connection(settings)
    record = records.load(conn, clip_id)
    if record is None or not record.callback_url:
        return 0
    try:
        addresses = checked_addresses(
            record.callback_url, allow_private=settings.webhook_allow_private
        )
    except UnsafeInput:
        job = get_current_job()
        if job is not None:
            job.retries_left = 0  # the address turned private: retrying cannot help
        raise
    clip = clip_resource(record, open_storage(settings), settings)
    body = event_body(event_id, event_type, clip)
    headers = signed_headers(conn, settings, record.owner, event_id, body)
    return _send_to_first_answering(record.callback_url, addresses, body, headers, settings)


def _send_to_first_answering(
    url: str, addresses: list[str], body: bytes, headers: dict[str, str], settings: Settings
) -> int:
    """POST to each checked address in turn until one accepts the connection."""
    failure: httpx.ConnectError | None = None
    for address in addresses:
        pinned, host_header, extensions = pinned_request(url, address)
        post = attempt.Post(pinned, body, headers | host_header, extensions)
        try:
            return attempt.send(post, timeout_seconds=settings.webhook_timeout_seconds)
        except httpx.ConnectError as exc:
            failure = exc  # nothing was sent: the next address may answer
    assert failure is not None
    raise failure
