"""Pydantic v2 models of the HTTP API (request bodies reject unknown fields)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from clipper.spec import Accuracy, Preset, TimecodeOrigin


def _not_bool(value: Any) -> Any:
    # JSON true/false would otherwise pass as 1.0/0.0 seconds.
    if isinstance(value, bool):
        raise ValueError("a time is a number of seconds or a timecode string")
    return value


#: seconds (65.2), "HH:MM:SS.mmm", SMPTE "HH:MM:SS:FF" or drop-frame "HH:MM:SS;FF".
TimeValue = Annotated[float | str, BeforeValidator(_not_bool)]

_TIME_DOC = 'seconds (65.2), "HH:MM:SS.mmm", SMPTE "HH:MM:SS:FF" or drop-frame "HH:MM:SS;FF"'


class SegmentIn(BaseModel):
    """One range of the source; `end` is exclusive."""

    model_config = ConfigDict(extra="forbid")

    start: TimeValue | None = Field(default=None, description=_TIME_DOC)
    end: TimeValue | None = Field(default=None, description=_TIME_DOC + "; exclusive")


class ClipRequest(BaseModel):
    """A clip: one range (start/end), several joined segments, or the full video."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"source": "press/2024-05-01.mp4", "start": 12.345, "end": 21.5},
                {
                    "source": "press/2024-05-01.mp4",
                    "start": "10:00:12:10",
                    "end": "10:00:21:15",
                    "timecode_origin": "embedded",
                    "accuracy": "exact",
                    "filename": "minister-answer.mp4",
                },
                {
                    "source": "press/2024-05-01.mp4",
                    "segments": [{"start": 5, "end": 10}, {"start": 60, "end": 70}],
                    "preset": "mp4",
                    "callback_url": "https://example.org/hooks/clipper",
                    "priority": "interactive",
                },
                {"source": "press/2024-05-01.mp4"},
            ]
        },
    )

    source: str = Field(min_length=1, max_length=1024, description="object key in the library")
    start: TimeValue | None = Field(default=None, description=_TIME_DOC)
    end: TimeValue | None = Field(default=None, description=_TIME_DOC + "; exclusive")
    segments: list[SegmentIn] | None = Field(
        default=None, min_length=1, max_length=100, description="joined in order into one output"
    )
    accuracy: Accuracy = Accuracy.EXACT
    preset: Preset = Preset.ORIGINAL
    timecode_origin: TimecodeOrigin = TimecodeOrigin.EMBEDDED
    filename: str | None = Field(default=None, max_length=200, description="download name")
    callback_url: str | None = Field(
        default=None, max_length=2048, description="POSTed a signed event on success or failure"
    )
    priority: Literal["interactive", "default", "bulk"] = "default"

    @model_validator(mode="after")
    def _segments_or_range(self) -> ClipRequest:
        if self.segments is not None and (self.start is not None or self.end is not None):
            raise ValueError("give either start/end or segments, not both")
        return self


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
    """Why a clip failed or stopped."""

    code: str
    message: str
    field: str | None = None


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
