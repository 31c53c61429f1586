"""Webhooks: the caller's signing secret (and the deprecated legacy one), and `events`, the
deliveries themselves as the OpenAPI document's `webhooks` (one schema per event type).

`create_app` includes `router` and adds `events` to `app.webhooks`.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response

from api.deps import ClientDep, RedisDep, SettingsDep
from api.models import (
    ClipFailedEvent,
    ClipSucceededEvent,
    DeliveryHeaders,
    WebhookSecret,
    WebhookSigningSecret,
)
from workers.delivery import secrets
from workers.webhooks import legacy_client_secret

router = APIRouter(prefix="/v1", tags=["webhooks"])


@router.get("/webhooks/secret", response_model=WebhookSigningSecret)
def signing_secret(client: ClientDep, conn: RedisDep) -> WebhookSigningSecret:
    """The secret that signs this client's deliveries (`webhook-signature`); made on first
    read. After an admin rotates it, the secret it replaced keeps signing beside it until
    `previous_valid_until`."""
    now = time.time()
    found = secrets.load(conn, client, now_unix=now)
    return WebhookSigningSecret(
        secret=found.current,
        since=found.current_since,
        previous_valid_until=found.previous_valid_until(now),
    )


@router.get("/webhook-secret", response_model=WebhookSecret, deprecated=True)
def legacy_secret(client: ClientDep, settings: SettingsDep, response: Response) -> WebhookSecret:
    """Deprecated: the secret of the `Clipper-Signature` header, sent for one more release.
    Verify `webhook-signature` with `GET /v1/webhooks/secret` instead."""
    response.headers["Deprecation"] = "true"
    response.headers["Link"] = '</v1/webhooks/secret>; rel="successor-version"'
    return WebhookSecret(secret=legacy_client_secret(settings, client))


# The deliveries Clipper makes, for the OpenAPI document's `webhooks` (never served here).
events = APIRouter(tags=["webhooks"])

_RECEIVER = """

POSTed to the clip's `callback_url` as compact JSON. Verify `webhook-signature` over the
raw body with a Standard Webhooks library and your `GET /v1/webhooks/secret`, answer 2xx
within `CLIPPER_WEBHOOK_TIMEOUT_SECONDS` (5 s by default; do the work afterwards) and
deduplicate on `webhook-id`: a delivery not answered 2xx in time is sent again after 10 s,
1 min, 5 min and 30 min (five attempts in all), with the same id, the body made afresh (a new
link) and a new timestamp and signature."""

_DELIVERED = "delivered: any 2xx status within the timeout counts (the body is not read)"
_RETRIED: dict[int | str, dict[str, Any]] = {
    "default": {"description": "anything else (or no answer in time) is retried"}
}


@events.post(
    "clip.succeeded",
    operation_id="clip_succeeded",
    summary="A clip succeeded",
    description="The clip's file is stored; `clip.result` links to it." + _RECEIVER,
    response_class=Response,
    response_description=_DELIVERED,
    responses=_RETRIED,
)
def clip_succeeded(body: ClipSucceededEvent, headers: Annotated[DeliveryHeaders, Header()]) -> None:
    """Documentation only: Clipper sends this, it never serves it."""


@events.post(
    "clip.failed",
    operation_id="clip_failed",
    summary="A clip failed",
    description="The clip failed and is not retried; `clip.error` says why." + _RECEIVER,
    response_class=Response,
    response_description=_DELIVERED,
    responses=_RETRIED,
)
def clip_failed(body: ClipFailedEvent, headers: Annotated[DeliveryHeaders, Header()]) -> None:
    """Documentation only: Clipper sends this, it never serves it."""
