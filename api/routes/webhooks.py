"""/v1/webhooks: the caller's webhook signing secret (and the deprecated legacy one)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response

from api.deps import ClientDep, RedisDep, SettingsDep
from api.models import WebhookSecret, WebhookSigningSecret
from workers.delivery import secrets
from workers.webhooks import client_secret

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
    return WebhookSecret(secret=client_secret(settings, client))
