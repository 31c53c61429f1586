"""Pydantic v2 models of the HTTP API (request bodies reject unknown fields).

The clip request body is the service's own model (`workers.submit.request`): the submit path,
the clip record and the job use the model the API validated.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from workers.submit.request import ClipRequest, SegmentIn

__all__ = [
    "ClipError",
    "ClipRequest",
    "ClipResource",
    "ClipResult",
    "Progress",
    "SegmentIn",
    "SourceDetail",
    "SourceItem",
    "SourceList",
    "WebhookSecret",
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
    """The caller's webhook signing secret and how signatures are made."""

    secret: str
    algorithm: str = "HMAC-SHA256"
    signed_payload: str = "{Clipper-Timestamp}.{raw body}"
    signature_header: str = "Clipper-Signature: v1=<hex>"
