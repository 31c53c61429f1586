"""The clip request: one validated model from the HTTP body to the job; and who asked.

The API validates the body into `ClipRequest` (FastAPI; unknown fields refused), the submit
path reads it, the clip record stores `model_dump(mode="json")`, and the job validates that
JSON into the same model again. Defaults live here and nowhere else; records written by
earlier versions store the same dump, so they validate too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from clipper.spec import Accuracy, CutSpec, Preset, Segment, TimecodeOrigin
from workers.queues import DEFAULT_QUEUE, QueueName

#: Longest time string accepted ("HH:MM:SS.mmm" and SMPTE are 11-12 characters).
MAX_TIME_TEXT_LENGTH = 32


def _a_time(value: Any) -> Any:
    # JSON true/false would otherwise pass as 1.0/0.0 seconds; NaN, Infinity and 1e999 (which
    # Python's JSON parser reads as inf) are numbers that name no frame.
    if isinstance(value, bool):
        raise ValueError("a time is a number of seconds or a timecode string")
    if isinstance(value, int | float) and not _finite(value):
        raise ValueError("a time must be a finite number of seconds")
    if isinstance(value, str) and len(value) > MAX_TIME_TEXT_LENGTH:
        raise ValueError(f"a time is at most {MAX_TIME_TEXT_LENGTH} characters")
    return value


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an int beyond float's range (JSON allows 1 followed by 400 zeros)
        return False


#: seconds (65.2), "HH:MM:SS.mmm", SMPTE "HH:MM:SS:FF" or drop-frame "HH:MM:SS;FF".
TimeValue = Annotated[float | str, BeforeValidator(_a_time)]

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
    priority: QueueName = DEFAULT_QUEUE

    @model_validator(mode="after")
    def _segments_or_range(self) -> ClipRequest:
        if self.segments is not None and (self.start is not None or self.end is not None):
            raise ValueError("give either start/end or segments, not both")
        return self

    @property
    def ranges(self) -> list[SegmentIn]:
        """The requested ranges in order: the segments, or the one start/end range."""
        return self.segments or [SegmentIn(start=self.start, end=self.end)]

    def cut_spec(self) -> CutSpec:
        """The engine's CutSpec (no range given = the full video)."""
        if self.segments:
            segments = tuple(Segment(start=s.start, end=s.end) for s in self.segments)
        else:
            segments = (Segment(start=self.start, end=self.end),)
        return CutSpec(
            segments=segments,
            accuracy=self.accuracy,
            preset=self.preset,
            timecode_origin=self.timecode_origin,
        )


@dataclass(frozen=True)
class ClipOrder:
    """One client's accepted request, as the submit path gets it."""

    owner: str  # the API key's client name
    request: ClipRequest
    idempotency_key: str | None = None  # the `Idempotency-Key` header
