"""Webhooks: a signed POST to the clip's `callback_url` when it succeeds or fails.

Body: `{"event_id", "type": "clip.succeeded"|"clip.failed", "clip": {…the clip resource…}}`.
Headers: `Clipper-Event-Id`, `Clipper-Timestamp` (Unix seconds) and
`Clipper-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>`. The secret is per
client: HMAC-SHA256(CLIPPER_LINK_SECRET, "webhook:" + client name), shown to the client by
`GET /v1/webhook-secret`. Receivers should recompute the signature over the raw body,
compare in constant time and refuse timestamps older than a few minutes.

Delivery is its own RQ job (queue `interactive`) with back-off retries; the body (with a
fresh download link) is built at each attempt, so no link sits in Redis. URLs must be
http(s) and, unless CLIPPER_WEBHOOK_ALLOW_PRIVATE, every address their host resolves to must
be public (`clipper.addresses`: IPv4 inside IPv6 forms judged too) — checked at submit and
again right before each delivery, which then connects only to the addresses it checked, one
after the other until one answers (SSRF and DNS-rebinding guard). Redirects are not
followed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import httpx
from redis import Redis
from rq import Retry, get_current_job

from clipper.addresses import is_public_address
from clipper.errors import UnsafeInput
from clipper.settings import Settings, get_settings
from clipper.storage import open_storage
from workers import records
from workers.presenter import clip_resource
from workers.queues import get_queue, redis_connection

#: Back-off between delivery attempts (then the event is dropped and logged by RQ).
WEBHOOK_RETRY_INTERVALS_SECONDS = (10, 60, 300, 1800)
WEBHOOK_QUEUE = "interactive"
MAX_URL_LENGTH = 2048


def client_secret(settings: Settings, client: str) -> str:
    """The client's webhook signing secret (derived, so nothing more to store or rotate)."""
    key = settings.link_secret.get_secret_value().encode()
    return hmac.new(key, f"webhook:{client}".encode(), hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `Clipper-Signature` header value for this body."""
    message = f"{timestamp}.".encode() + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


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
    event_id = f"evt_{uuid.uuid4().hex}"
    get_queue(WEBHOOK_QUEUE, conn).enqueue(
        "workers.webhooks.deliver",
        clip_id,
        event_id,
        event_type,
        job_id=event_id,
        job_timeout=60,
        retry=Retry(
            max=len(WEBHOOK_RETRY_INTERVALS_SECONDS),
            interval=list(WEBHOOK_RETRY_INTERVALS_SECONDS),
        ),
        description=f"webhook {event_type} for {clip_id}",
    )
    return event_id


def deliver(clip_id: str, event_id: str, event_type: str) -> int:
    """RQ job: POST the signed event; raises (→ retry) on network errors and non-2xx answers.

    Queued jobs name it `workers.webhooks.deliver`: it stays at that dotted path."""
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
    body = json.dumps(
        {"event_id": event_id, "type": event_type, "clip": clip}, separators=(",", ":")
    ).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Clipper-Webhook/1",
        "Clipper-Event-Id": event_id,
        "Clipper-Timestamp": str(timestamp),
        "Clipper-Signature": sign(client_secret(settings, record.owner), timestamp, body),
    }
    response = _post_to_first_answering(record.callback_url, addresses, body, headers, settings)
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"webhook receiver answered {response.status_code}")
    return response.status_code


def _post_to_first_answering(
    url: str, addresses: list[str], body: bytes, headers: dict[str, str], settings: Settings
) -> httpx.Response:
    """POST to each checked address in turn until one accepts the connection."""
    failure: httpx.TransportError | None = None
    with httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False) as client:
        for address in addresses:
            pinned, host_header, extensions = pinned_request(url, address)
            request = client.build_request(
                "POST", pinned, content=body, headers=headers | host_header, extensions=extensions
            )
            try:
                return client.send(request)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = exc  # nothing was sent: the next address may answer
    assert failure is not None
    raise failure
