"""Pydantic v2 models of the HTTP API (request bodies reject unknown fields).

The clip request body is the service's own model (`workers.submit.request`): the submit path,
the clip record and the job use the model the API validated.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from workers.delivery.events import EVENT_ID_PREFIX
from workers.submit.request import ClipRequest, SegmentIn

__all__ = [
    "ClipError",
    "ClipFailedEvent",
    "ClipRequest",
    "ClipResource",
    "ClipResult",
    "ClipSucceededEvent",
    "DeliveryHeaders",
    "FailedClip",
    "Progress",
    "SegmentIn",
    "SourceDetail",
    "SourceItem",
    "SourceList",
    "SucceededClip",
    "WebhookSecret",
    "WebhookSecretRotation",
    "WebhookSigningSecret",
]


class Progress(BaseModel):
    """Where a clip is: phase queued/probing/cutting/verifying/uploading/done."""

    phase: str | None = None
    percent: float = 0.0
    eta_seconds: float | None = None


class ClipResult(BaseModel):
    """A finished clip: a fresh signed link (made on every read) and what it holds."""

    download_url: str | None
    expires_at: str | None
    filename: str
    size_bytes: int | None
    duration_seconds: float | None
    accuracy: dict[str, Any] | None = Field(description="the engine's accuracy report")


class ClipError(BaseModel):
    """Why a clip failed or stopped, or why its last attempt did (`retrying`)."""

    code: str
    message: str
    field: str | None = None
    retrying: bool = Field(
        default=False, description="the clip is queued again: another attempt follows"
    )


class ClipResource(BaseModel):
    """A clip as the API shows it."""

    id: str
    status: Literal["queued", "running", "succeeded", "failed", "canceled"]
    source: str
    request: dict[str, Any]
    progress: Progress
    result: ClipResult | None
    error: ClipError | dict[str, Any] | None
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None


class SourceItem(BaseModel):
    """One object of the source library."""

    key: str
    size_bytes: int
    etag: str
    last_modified: str


class SourceList(BaseModel):
    """A listing of the source library."""

    prefix: str
    items: list[SourceItem]


class SourceDetail(BaseModel):
    """A probed source: duration, streams, frame rate, start timecode, nearby keyframes."""

    key: str
    size_bytes: int
    etag: str
    duration_seconds: float | None
    frame_rate: str | None
    start_timecode: str | None
    media: dict[str, Any]
    keyframes_near: dict[str, list[float]]


class WebhookSecret(BaseModel):
    """Deprecated: the secret of the `Clipper-Signature` header (derived from the link
    secret); use `GET /v1/webhooks/secret` and the `webhook-signature` header instead."""

    secret: str
    algorithm: str = "HMAC-SHA256"
    signed_payload: str = "{Clipper-Timestamp}.{raw body}"
    signature_header: str = "Clipper-Signature: v1=<hex>"


class WebhookSigningSecret(BaseModel):
    """The caller's Standard Webhooks secret: verify `webhook-signature` with it."""

    secret: str = Field(
        description="`whsec_…`: hand it as is to a Standard Webhooks library",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )
    since: str = Field(description="when this secret began signing deliveries (ISO 8601)")
    previous_valid_until: str | None = Field(
        description="set after a rotation: until then deliveries also carry a signature by "
        "the secret this one replaced, so a receiver still using it keeps verifying"
    )
    scheme: str = Field(
        default="Standard Webhooks v1: webhook-signature: v1,<base64 HMAC-SHA256 of "
        "{webhook-id}.{webhook-timestamp}.{raw body}>, several separated by spaces",
        description="how deliveries are signed",
    )


class WebhookSecretRotation(BaseModel):
    """A client's webhook secret after a rotation (the secret itself is the client's to read)."""

    client: str
    since: str = Field(description="when the new secret began signing (ISO 8601)")
    previous_valid_until: str | None = Field(
        description="until then deliveries carry a signature by the replaced secret too; "
        "null when it was dropped at once"
    )


# --- webhook events (the OpenAPI document's `webhooks`) ----------------------------------

_EVENT_ID = (
    f"the event id (`{EVENT_ID_PREFIX}` + 32 hex digits), also the `webhook-id` header; "
    "the same on every retry of this event: deduplicate on it"
)


class DeliveryHeaders(BaseModel):
    """The headers of every delivery: Standard Webhooks', and Clipper's own for one release."""

    webhook_id: str = Field(description=_EVENT_ID)
    webhook_timestamp: int = Field(
        description="Unix seconds of this attempt (every retry is signed afresh); refuse "
        "values more than 5 minutes away from your clock"
    )
    webhook_signature: str = Field(
        description="`v1,<base64 HMAC-SHA256 of {webhook-id}.{webhook-timestamp}.{raw body}>`, "
        "several separated by spaces: one by your current secret (`GET /v1/webhooks/secret`) "
        "and, while a rotation overlaps, one by the secret it replaced; any one verifies"
    )
    clipper_event_id: str = Field(
        deprecated=True, description="deprecated, sent for one more release: as `webhook-id`"
    )
    clipper_timestamp: int = Field(
        deprecated=True, description="deprecated, sent for one more release: as `webhook-timestamp`"
    )
    clipper_signature: str = Field(
        deprecated=True,
        description="deprecated, sent for one more release: `v1=<hex HMAC-SHA256 of "
        "{Clipper-Timestamp}.{raw body}>` keyed with the secret of `GET /v1/webhook-secret`",
    )


class SucceededClip(ClipResource):
    """The clip of a `clip.succeeded` event; `result.download_url` is a fresh signed link."""

    status: Literal["succeeded"]
    result: ClipResult


class FailedClip(ClipResource):
    """The clip of a `clip.failed` event; `error` says why."""

    status: Literal["failed"]
    result: None
    error: ClipError


class ClipSucceededEvent(BaseModel):
    """Body of a `clip.succeeded` delivery."""

    event_id: str = Field(description=_EVENT_ID)
    type: Literal["clip.succeeded"]
    clip: SucceededClip


class ClipFailedEvent(BaseModel):
    """Body of a `clip.failed` delivery."""

    event_id: str = Field(description=_EVENT_ID)
    type: Literal["clip.failed"]
    clip: FailedClip
