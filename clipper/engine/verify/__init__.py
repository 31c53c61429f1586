"""Verification: a written output read back and compared with what its plan says it is.

Checked before a cut counts (exit code 0 of the FFmpeg that wrote the file proves nothing):

- the streams: their set and order, and each one's codec, stored size, display rotation,
  profile, pixel format, field order, colour tags, audio rate, channels and layout,
  language, title and disposition, as far as the container carries them (the plan's
  `OutputLayout`);
- the video frames: the planned count, a keyframe first, presentation timestamps strictly
  increasing with every step one frame within one container tick (seams of a join
  included);
- decoding (`-v error`) of the re-encoded parts and of every place where parts meet: no
  error lines, every decoded frame at the stored size, one field order throughout;
- every audio track starting and ending with the video.

Any difference raises `VerificationFailed` naming it; `Verification.compared` says what was
compared. How each container is read is in `facts.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from clipper.engine.context import DEFAULT_CONTEXT, RunContext
from clipper.engine.plan.cutplan import CutPlan
from clipper.engine.plan.layout import OutputLayout
from clipper.engine.report import Verification
from clipper.engine.verify import facts
from clipper.engine.verify.checks import (
    audio_problems,
    frame_problems,
    layout_problems,
    timestamp_problems,
)
from clipper.engine.verify.facts import DecodeFacts, Interval, PacketFacts, StreamFacts
from clipper.errors import VerificationFailed

__all__ = ["Expected", "verify_cut", "verify_output"]


@dataclass(frozen=True)
class Expected:
    """What a written output must be, as its plan describes it.

    `decode_intervals` are seconds from the output's first frame; None decodes everything,
    an empty list nothing (a pure stream copy: packets are the source's own). `layout` None
    checks frames, timestamps and audio only.
    """

    frames: int
    frame_rate: Fraction
    audio: bool
    decode_intervals: Sequence[Interval] | None = None
    layout: OutputLayout | None = None
    #: The source's timestamp tick: copied packets keep the source's timestamps (a
    #: Matroska source's 1 ms steps stay 33/34 ms in an MP4 clip).
    source_tick_seconds: float = 0.0

    @classmethod
    def of(cls, plan: CutPlan) -> Expected:
        """The expectation a cut plan sets."""
        return cls(
            frames=plan.expected_frames,
            frame_rate=plan.frame_rate,
            audio=bool(plan.media.audio),
            decode_intervals=plan.decode_intervals,
            layout=plan.layout,
            source_tick_seconds=float(plan.read.original.video.time_base),
        )


def _video_problems(packets: PacketFacts, decoded: DecodeFacts, expected: Expected) -> list[str]:
    count, frame_seconds = len(packets.video_pts), 1 / float(expected.frame_rate)
    problems = []
    if count != expected.frames:
        problems.append(f"{count} video frames, {expected.frames} expected")
    if expected.decode_intervals is None and decoded.frames != count:
        problems.append(f"{decoded.frames} of {count} video frames decode")
    if count and not packets.first_is_key:
        problems.append("the video does not start with a keyframe")
    if decoded.errors:
        problems.append(f"{len(decoded.errors)} decode error line(s): {decoded.errors[0][:200]}")
    if packets.video_pts:
        span = max(packets.video_pts) - min(packets.video_pts)
        if abs(span - (count - 1) * frame_seconds) > frame_seconds / 2:
            problems.append(f"frame timestamps span {span:.4f} s for {count} frames")
    tick = max(packets.tick_seconds, expected.source_tick_seconds)
    problems += timestamp_problems(packets.video_pts, expected.frame_rate, tick)
    return problems


def _streams(
    path: Path, packets: PacketFacts, decoded: DecodeFacts, ctx: RunContext
) -> tuple[list[StreamFacts], int]:
    """The packet pass's streams (the video described in full when the decode pass ran),
    and the chapter count."""
    if packets.streams is not None and packets.chapters is not None:
        streams, chapters = list(packets.streams), packets.chapters
    else:
        streams, chapters = facts.streams_by_ffprobe(path, ctx)
    if decoded.video is not None and streams and streams[0].kind == "video":
        streams[0] = decoded.video
    return streams, chapters


def verify_output(
    path: Path, expected: Expected, ctx: RunContext = DEFAULT_CONTEXT
) -> Verification:
    """Check `path` against `expected`; VerificationFailed naming every difference."""
    packets = facts.packets_in_process(path) or facts.packets_by_ffprobe(path, ctx)
    first = min(packets.video_pts, default=0.0)
    last = max(packets.video_pts, default=0.0)
    frame_seconds = 1 / float(expected.frame_rate)
    decoded = facts.decode(path, first, expected.decode_intervals, ctx)
    problems = _video_problems(packets, decoded, expected)
    compared = [f"packets ({packets.reader}): count, keyframe first, timestamps"]
    if expected.layout is not None:
        streams, chapters = _streams(path, packets, decoded, ctx)
        found, line = layout_problems(expected.layout, streams)
        problems += found
        compared.append(f"{line}; {chapters} chapters")
        if chapters != len(expected.layout.chapters):
            problems.append(f"{chapters} chapters, planned {len(expected.layout.chapters)}")
        if decoded.sizes:
            problems += frame_problems(decoded, expected.layout.video)
            compared.append(f"{len(decoded.sizes)} decoded frames: size, field order")
    if expected.audio and not packets.audio:
        problems.append("the audio stream is missing")
    problems += audio_problems(packets.audio, first, last + frame_seconds)
    if problems:
        raise VerificationFailed("output failed verification: " + "; ".join(problems))
    main_audio = packets.audio[0] if packets.audio else []
    audio_end = max((t + d for t, d in main_audio), default=None)
    audio_start = min((t for t, _ in main_audio), default=None)
    count = len(packets.video_pts)
    return Verification(
        frame_count=count,
        expected_frame_count=expected.frames,
        duration_seconds=round(count * frame_seconds, 6),
        first_frame_seconds=round(first, 6),
        last_frame_seconds=round(last, 6),
        decode_errors=len(decoded.errors),
        frames_decoded=decoded.frames,
        audio_duration_seconds=None
        if audio_end is None or audio_start is None
        else round(audio_end - audio_start, 6),
        audio_video_delta_seconds=None
        if audio_end is None
        else round(audio_end - (last + frame_seconds), 6),
        compared=compared,
        passed=True,
    )


def verify_cut(plan: CutPlan, path: Path, ctx: RunContext) -> Verification:
    """The verify step: `path` against what `plan` says the output will be."""
    return verify_output(path, Expected.of(plan), ctx)
