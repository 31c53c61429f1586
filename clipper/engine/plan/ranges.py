"""Requested segments → source frame ranges (seconds, clock time or SMPTE; the product rule).

A frame belongs to a range when its timestamp lies in [start, end); errors name the field
("start", or "segments[i].end" for several segments) so the API can point at it.
"""

from __future__ import annotations

from clipper.engine.media.model import MediaInfo
from clipper.engine.plan.parts import FrameRange
from clipper.errors import BadRequest, InvalidMedia
from clipper.spec import CutSpec
from clipper.timecode import time_to_frame

__all__ = ["resolve_ranges"]


def _frame(media: MediaInfo, spec: CutSpec, value: float | int | str, field: str) -> int:
    return time_to_frame(
        value,
        media.frame_rate,
        start_timecode=media.start_timecode,
        origin=spec.timecode_origin,
        field=field,
    )


def resolve_ranges(media: MediaInfo, spec: CutSpec) -> list[FrameRange]:
    """Requested segments → frame ranges; BadRequest naming "start"/"end" for a single
    segment, "segments[i].start"/"segments[i].end" otherwise."""
    if media.variable_frame_rate:
        raise InvalidMedia(
            f"the source has a variable frame rate ({media.frame_count} frames where "
            f"{media.video.frame_rate} fps would give more): Clipper cuts frame-exactly only "
            "constant-frame-rate video; convert it first (ffmpeg -fps_mode cfr)",
            field="source",
        )
    single = len(spec.segments) == 1
    total = media.frame_count
    ranges = []
    for i, seg in enumerate(spec.segments):
        f_start = "start" if single else f"segments[{i}].start"
        f_end = "end" if single else f"segments[{i}].end"
        start = 0 if seg.start is None else _frame(media, spec, seg.start, f_start)
        end = total if seg.end is None else _frame(media, spec, seg.end, f_end)
        if start >= total:
            raise BadRequest(
                f"start is at or past the end of the source ({media.duration_seconds:.3f} s)",
                field=f_start,
            )
        if end == total + 1:
            end = total  # a client's "end = duration" rounded up by less than a frame
        if end > total:
            raise BadRequest(
                f"end is past the end of the source ({media.duration_seconds:.3f} s)",
                field=f_end,
            )
        if end <= start:
            raise BadRequest("end must be after start (the range selects no frame)", field=f_end)
        ranges.append(FrameRange(start, end))
    return ranges
