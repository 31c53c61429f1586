"""The signed headers of a delivery: Standard Webhooks, and Clipper's own (deprecated).

Standard Webhooks (https://www.standardwebhooks.com), signed with the `standardwebhooks`
library: `webhook-id` (the event id, the same on every retry), `webhook-timestamp` (Unix
seconds of this attempt) and `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>`
over `{id}.{timestamp}.{body}`, one per secret that signs (two while a rotation overlaps).

Clipper's own headers, sent beside them for one release and deprecated: `Clipper-Event-Id`,
`Clipper-Timestamp` and `Clipper-Signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`
with the legacy secret HMAC-SHA256(CLIPPER_LINK_SECRET, "webhook:" + client), the one
`GET /v1/webhook-secret` shows. Receivers written for them keep working unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

#: The Standard Webhooks header names.
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

#: Clipper's own header names (deprecated).
LEGACY_ID_HEADER = "Clipper-Event-Id"
LEGACY_TIMESTAMP_HEADER = "Clipper-Timestamp"
LEGACY_SIGNATURE_HEADER = "Clipper-Signature"


def standard_headers(
    event_id: str, timestamp: int, body: bytes, secrets: Sequence[str]
) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` and `webhook-signature` (one signature a secret)."""
    if not secrets:
        raise ValueError("a delivery needs at least one signing secret")
    moment = datetime.fromtimestamp(timestamp, UTC)
    payload = body.decode()
    signatures = [Webhook(secret).sign(event_id, moment, payload) for secret in secrets]
    return {
        ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(signatures),
    }


def legacy_secret(link_secret: str, client: str) -> str:
    """The client's secret of the deprecated scheme, derived from the link secret."""
    return hmac.new(link_secret.encode(), f"webhook:{client}".encode(), hashlib.sha256).hexdigest()


def legacy_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The deprecated `Clipper-Signature` header value for this body."""
    message = f"{timestamp}.".encode() + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def legacy_headers(event_id: str, timestamp: int, body: bytes, secret: str) -> dict[str, str]:
    """`Clipper-Event-Id`, `Clipper-Timestamp` and `Clipper-Signature` (deprecated)."""
    return {
        LEGACY_ID_HEADER: event_id,
        LEGACY_TIMESTAMP_HEADER: str(timestamp),
        LEGACY_SIGNATURE_HEADER: legacy_signature(secret, timestamp, body),
    }
