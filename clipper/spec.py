"""What a caller asks the engine for: ranges, accuracy, preset, timecode origin.

Plain frozen dataclasses: the API validates user JSON into these, the CLI builds them from
flags, the engine resolves them against a probed source into exact frame ranges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

#: A time as the user wrote it: seconds (65.2), "HH:MM:SS.mmm", SMPTE "HH:MM:SS:FF" or
#: drop-frame "HH:MM:SS;FF". Parsed only once the source's frame rate is known.
TimeValue = float | int | str


class Accuracy(StrEnum):
    """How exact the cut must be."""

    EXACT = "exact"  # frame-exact; smart cut (re-encode partial GOPs only) or full re-encode
    FAST = "fast"  # stream copy from the keyframe at or before the in-point; never re-encodes


class Preset(StrEnum):
    """Output format."""

    ORIGINAL = "original"  # same codecs and container as the source
    MP4 = "mp4"  # H.264 High + AAC in MP4, at the source's resolution


class TimecodeOrigin(StrEnum):
    """What an SMPTE timecode counts from."""

    EMBEDDED = "embedded"  # the source's own start timecode (e.g. 10:00:00:00)
    ZERO = "zero"  # the first frame is 00:00:00:00


@dataclass(frozen=True)
class Segment:
    """One requested range; `None` means the start / the end of the source. `end` is exclusive."""

    start: TimeValue | None = None
    end: TimeValue | None = None


@dataclass(frozen=True)
class CutSpec:
    """A whole request: one or more segments joined in order into one output."""

    segments: tuple[Segment, ...] = field(default_factory=lambda: (Segment(),))
    accuracy: Accuracy = Accuracy.EXACT
    preset: Preset = Preset.ORIGINAL
    timecode_origin: TimecodeOrigin = TimecodeOrigin.EMBEDDED

    @property
    def is_full_video(self) -> bool:
        """True when the request covers the whole source in one segment."""
        return len(self.segments) == 1 and self.segments[0] == Segment()
