"""The comparisons verification makes: a written output against its plan (pure).

Each function returns the problems it found, in words that name what differed, and what it
compared (for the report). Nothing here runs a process.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import fields
from fractions import Fraction
from typing import Any

from clipper.engine.plan.layout import AudioLayout, OutputLayout, VideoLayout
from clipper.engine.verify.facts import DecodeFacts, StreamFacts

#: Slack for timestamp rounding in containers (MP4 timescales, MPEG-TS 90 kHz).
TIMESTAMP_SLACK_SECONDS = 0.002
#: ffprobe prints times with 6 decimals: two of them differ by up to this much more.
PRINT_SLACK_SECONDS = 2e-6
#: How many offending places a problem lists before it only counts the rest.
SHOWN = 3


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return "; ".join(items[:SHOWN]) + more


def timestamp_problems(pts: Sequence[float], rate: Fraction, tick: float) -> list[str]:
    """Presentation times strictly increasing, each step one frame within one container tick
    (Matroska's 1 ms ticks give 33/34 ms steps at 29.97 fps): no doubled frame, no hole."""
    frame = 1 / float(rate)
    tolerance = tick + PRINT_SLACK_SECONDS
    times = sorted(pts)
    doubled, holes = [], []
    for before, after in itertools.pairwise(times):
        step = after - before
        if step <= PRINT_SLACK_SECONDS:
            doubled.append(f"{after:.3f} s")
        elif abs(step - frame) > tolerance:
            holes.append(f"{step * 1000:.1f} ms after {before:.3f} s")
    problems = []
    if doubled:
        problems.append(f"two frames share a timestamp at {_listed(doubled)}")
    if holes:
        problems.append(
            f"frame steps of other than one frame ({frame * 1000:.2f} ms ± {tick * 1000:.3f} ms): "
            + _listed(holes)
        )
    return problems


def _same(field_name: str, planned: Any, found: Any) -> bool:
    if field_name == "language":
        return (planned or "und") == (found or "und")
    if field_name == "profile":
        def norm(p: Any) -> str:
            return str(p or "").lower().removeprefix("constrained ")
        return norm(planned) == norm(found)
    if field_name == "disposition":
        return tuple(planned or ()) == tuple(found or ())
    return bool(planned == found)


def _stream_problems(
    name: str, planned: VideoLayout | AudioLayout, found: StreamFacts
) -> tuple[list[str], list[str]]:
    problems, compared = [], []
    for f in fields(planned):
        if f.name == "source_index":
            continue
        want = getattr(planned, f.name)
        if want is None or f.name not in found.known:
            continue  # not promised, or not what this reader can tell
        got = found.values.get(f.name)
        if f.name == "field_order" and got is None:
            continue  # the stream does not say (x265 writes no field info); frames are checked
        compared.append(f.name)
        if not _same(f.name, want, got):
            problems.append(f"{name} {f.name} is {got!r}, planned {want!r}")
    return problems, compared


def layout_problems(layout: OutputLayout, streams: list[StreamFacts]) -> tuple[list[str], str]:
    """The output's streams against the planned layout: the set and order, then each
    stream's shape and metadata. (problems, a line saying what was compared)."""
    kinds = [s.kind for s in streams]
    if kinds != layout.kinds:
        planned = ", ".join(layout.kinds)
        return [f"the streams are {', '.join(kinds) or 'none'}, planned {planned}"], "streams"
    problems, parts = [], [f"streams {', '.join(kinds)}"]
    found, compared = _stream_problems("video", layout.video, streams[0])
    problems += found
    parts.append(f"video {'/'.join(compared)}")
    for j, audio in enumerate(layout.audio):
        found, compared = _stream_problems(f"audio {j}", audio, streams[1 + j])
        problems += found
        if j == 0:
            parts.append(f"audio {'/'.join(compared)}")
    if layout.timecode_track and streams[-1].values.get("codec") != "tmcd":
        problems.append("the timecode track is missing")
    return problems, "; ".join(parts)


def frame_problems(decoded: DecodeFacts, video: VideoLayout) -> list[str]:
    """Every decoded frame at the planned stored size, and one field order throughout."""
    problems = []
    planned = (video.width, video.height)
    other = [size for size in decoded.sizes if size != planned]
    if other:
        w, h = other[0]
        problems.append(
            f"{len(other)} of {len(decoded.sizes)} decoded frames are {w}x{h}, "
            f"planned {planned[0]}x{planned[1]}"
        )
    kinds = set(decoded.fields)
    if len(kinds) > 1:
        problems.append("decoded frames mix progressive and interlaced or both field orders")
    interlaced = video.field_order not in (None, "progressive")
    if video.field_order is not None and any(bool(i) != interlaced for i, _ in kinds):
        shown = "interlaced" if not interlaced else "progressive"
        problems.append(f"decoded frames are {shown}, the source is {video.field_order}")
    return problems


def audio_problems(
    audio: list[list[tuple[float, float]]], video_first: float, video_end: float
) -> list[str]:
    """Each audio track starts and ends with the video, within one audio frame + 2 ms.

    Containers without edit lists (MPEG-TS, MKV) keep the encoder's priming samples,
    timestamped before the first video frame: allowed at the start, one frame's worth.
    """
    problems = []
    for j, packets in enumerate(audio):
        if not packets:
            problems.append(f"audio {j} holds no packets")
            continue
        start = min(t for t, _ in packets)
        end = max(t + d for t, d in packets)
        tolerance = max(d for _, d in packets) + TIMESTAMP_SLACK_SECONDS
        delta, lead = end - video_end, video_first - start
        if abs(delta) > tolerance:
            problems.append(f"audio {j} ends {delta * 1000:.1f} ms away from the video's end")
        if abs(lead) > tolerance:
            problems.append(
                f"audio {j} starts {lead * 1000:.1f} ms away from the video's start"
            )
    return problems
