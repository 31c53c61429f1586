"""Admin action on webhook secrets: rotate a client's, with an overlap (admin keys only)."""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import RedisDep, SettingsDep
from api.models import WebhookSecretRotation
from api.ops.admin import AdminDep
from api.problems import ApiProblem
from clipper.settings import MAX_WEBHOOK_ROTATION_SECONDS
from workers.delivery import secrets

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post(
    "/webhook-secrets/{client}/rotate",
    response_model=WebhookSecretRotation,
    summary="Rotate a client's webhook secret",
)
def rotate_webhook_secret(
    client: str,
    admin: AdminDep,
    conn: RedisDep,
    settings: SettingsDep,
    overlap_seconds: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_WEBHOOK_ROTATION_SECONDS,
            description="how long the replaced secret keeps signing beside the new one "
            "(default CLIPPER_WEBHOOK_ROTATION_SECONDS; 0 drops it at once, e.g. after a leak)",
        ),
    ] = None,
) -> WebhookSecretRotation:
    """Give the client a new secret, which it reads with `GET /v1/webhooks/secret`; the one
    it replaces keeps signing deliveries beside it for the overlap."""
    if client not in settings.api_key_names.values():
        raise ApiProblem(404, "not_found", f"no client {client!r}", field="client")
    overlap = settings.webhook_rotation_seconds if overlap_seconds is None else overlap_seconds
    now = time.time()
    rotated = secrets.rotate(conn, client, overlap_seconds=overlap, now_unix=now)
    log.info(
        "admin %s: rotated the webhook secret of %s",
        admin,
        client,
        extra={"event": "admin.rotate_webhook_secret", "admin": admin, "client": client},
    )
    return WebhookSecretRotation(
        client=client,
        since=rotated.current_since,
        previous_valid_until=rotated.previous_valid_until(now),
    )
