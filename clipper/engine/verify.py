"""Verify a finished output before it counts: packets, timestamps, decoding, audio length.

Two passes, sized to stay cheap next to the cut itself:

1. Packets of every stream (no decoding): video frame count and timestamps, audio start/end.
   MP4/MOV outputs are read in-process from their moov (clipper/engine/media/mp4index.py; an ffprobe
   start costs about as much as a 10 s stream copy), others by ffprobe.
2. Decoding at `-v error`: the whole file, or only the given intervals (the re-encoded parts
   and the first GOP of every copied part, where parts meet). Copied GOPs are the source's
   own packets; decoding all of them would cost more than the smart cut saved.

Exit code 0 of the FFmpeg that wrote the file proves nothing; this does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from clipper.engine.context import DEFAULT_CONTEXT, RunContext
from clipper.engine.ffmpeg import inputs, runner
from clipper.engine.media.mp4index import read_tracks
from clipper.engine.plan.cutplan import CutPlan
from clipper.engine.report import Verification
from clipper.errors import EngineError, VerificationFailed

#: Slack for timestamp rounding in containers (MP4 timescales, MPEG-TS 90 kHz).
TIMESTAMP_SLACK_SECONDS = 0.002
#: Our own outputs only: the formats Clipper writes.
OUTPUT_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mpegts"

Interval = tuple[float, float]


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _probe(path: Path, extra: list[str], ctx: RunContext) -> tuple[dict[str, Any], str]:
    argv = [
        ctx.ffprobe_path, "-v", "error", "-protocol_whitelist", "file",
        "-format_whitelist", OUTPUT_FORMATS, "-of", "json", *extra, inputs.output_url(path),
    ]  # fmt: skip
    try:
        result = runner.run(argv, ctx, capture_stdout=True)
    except EngineError as exc:
        raise VerificationFailed(f"the output cannot be read: {exc.message}") from exc
    return json.loads(result.stdout or "{}"), result.stderr_tail


def _merge(intervals: Sequence[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _decode(
    path: Path, base: float, intervals: Sequence[Interval] | None, ctx: RunContext
) -> tuple[int, str]:
    """Decode the video (all of it, or intervals from `base`): frames decoded, error text."""
    if intervals is not None and not intervals:
        return 0, ""
    extra = ["-select_streams", "v:0", "-show_entries", "frame=best_effort_timestamp_time"]
    if intervals is not None:
        spec = ",".join(f"{base + a:.6f}%{base + b:.6f}" for a, b in _merge(intervals))
        extra += ["-read_intervals", spec]
    data, errors = _probe(path, extra, ctx)
    return len(data.get("frames") or []), errors


#: Video presentation times, whether the first video packet is a keyframe, and the first
#: audio stream's (time, duration) per packet: what the packet pass establishes.
PacketFacts = tuple[list[float], bool, list[tuple[float, float]]]


def _packets_in_process(path: Path) -> PacketFacts | None:
    """The packet facts of an MP4/MOV output from its moov (no ffprobe); None for others."""
    tracks = read_tracks(path)
    if tracks is None:
        return None
    video = next((t for t in tracks if t.handler == "vide"), None)
    audio = next((t for t in tracks if t.handler == "soun"), None)
    if video is None:
        return None  # let ffprobe say what the file is
    pairs = (
        [] if audio is None else list(zip(audio.pts_seconds, audio.durations_seconds, strict=True))
    )
    first_is_key = video.first_is_sync and bool(video.pts_seconds)
    return list(video.pts_seconds), first_is_key, pairs


def _packets_by_ffprobe(path: Path, ctx: RunContext) -> PacketFacts:
    """The packet facts from ffprobe's packet listing (MKV, MPEG-TS, unusual MP4)."""
    entries = "packet=stream_index,pts_time,duration_time,flags:stream=index,codec_type"
    data, _ = _probe(path, ["-show_entries", entries], ctx)
    kinds = {int(s["index"]): str(s.get("codec_type")) for s in data.get("streams", [])}
    first_audio = min((i for i, k in kinds.items() if k == "audio"), default=None)
    video_index = min((i for i, k in kinds.items() if k == "video"), default=None)
    video_ts: list[float] = []
    first_is_key = False
    audio: list[tuple[float, float]] = []
    for p in data.get("packets") or []:
        pts = _float(p.get("pts_time"))
        index = int(p.get("stream_index", -1))
        if pts is None:
            continue
        if index == video_index:
            if not video_ts:
                first_is_key = "K" in str(p.get("flags", ""))
            video_ts.append(pts)
        elif index == first_audio:
            audio.append((pts, _float(p.get("duration_time")) or 0.0))
    return video_ts, first_is_key, audio


@dataclass(frozen=True)
class Expected:
    """What a written output must be, as its plan describes it.

    `decode_intervals` are seconds from the output's first frame; None decodes everything,
    an empty list nothing (a pure stream copy: packets are the source's own).
    """

    frames: int
    frame_rate: Fraction
    audio: bool
    decode_intervals: Sequence[Interval] | None = None

    @classmethod
    def of(cls, plan: CutPlan) -> Expected:
        """The expectation a cut plan sets."""
        return cls(
            frames=plan.expected_frames,
            frame_rate=plan.frame_rate,
            audio=bool(plan.media.audio),
            decode_intervals=plan.decode_intervals,
        )


@dataclass(frozen=True)
class _Measured:
    """What the packet and decode passes found."""

    video_ts: list[float]
    first_is_key: bool
    audio: list[tuple[float, float]]
    decoded: int
    error_lines: list[str]

    @property
    def count(self) -> int:
        return len(self.video_ts)

    @property
    def first(self) -> float:
        return min(self.video_ts, default=0.0)

    @property
    def last(self) -> float:
        return max(self.video_ts, default=0.0)


def _audio_span(m: _Measured, frame_seconds: float) -> tuple[float, float, float] | None:
    """(audio duration, end delta to the video's end, lead before its start), or None."""
    if not m.audio:
        return None
    audio_start = min(t for t, _ in m.audio)
    audio_end = max(t + d for t, d in m.audio)
    # Containers without edit lists (MPEG-TS, MKV) keep the encoder's priming samples,
    # timestamped before the first video frame: allowed at the start, one frame's worth.
    return audio_end - audio_start, audio_end - (m.last + frame_seconds), m.first - audio_start


def _video_problems(m: _Measured, expected: Expected) -> list[str]:
    frame_seconds = 1 / float(expected.frame_rate)
    problems = []
    if m.count != expected.frames:
        problems.append(f"{m.count} video frames, {expected.frames} expected")
    if expected.decode_intervals is None and m.decoded != m.count:
        problems.append(f"{m.decoded} of {m.count} video frames decode")
    if m.count and not m.first_is_key:
        problems.append("the video does not start with a keyframe")
    if m.error_lines:
        problems.append(f"{len(m.error_lines)} decode error line(s): {m.error_lines[0][:200]}")
    span = m.last - m.first
    if m.count and abs(span - (m.count - 1) * frame_seconds) > frame_seconds / 2:
        problems.append(f"frame timestamps span {span:.4f} s for {m.count} frames")
    return problems


def _audio_problems(m: _Measured, expected: Expected) -> list[str]:
    span = _audio_span(m, 1 / float(expected.frame_rate))
    if span is None:
        return ["the audio stream is missing"] if expected.audio else []
    _, delta, lead = span
    tolerance = max((d for _, d in m.audio), default=0.0) + TIMESTAMP_SLACK_SECONDS
    problems = []
    if abs(delta) > tolerance:
        problems.append(f"audio ends {delta * 1000:.1f} ms away from the video's end")
    if abs(lead) > tolerance:
        problems.append(f"audio starts {lead * 1000:.1f} ms away from the video's start")
    return problems


def verify_output(
    path: Path, expected: Expected, ctx: RunContext = DEFAULT_CONTEXT
) -> Verification:
    """Check frame count, timestamps, decode errors and audio length; VerificationFailed if not."""
    video_ts, first_is_key, audio = _packets_in_process(path) or _packets_by_ffprobe(path, ctx)
    first = min(video_ts, default=0.0)
    decoded, errors = _decode(path, first, expected.decode_intervals, ctx)
    lines = [line for line in errors.splitlines() if line.strip()]
    m = _Measured(video_ts, first_is_key, audio, decoded, lines)
    problems = _video_problems(m, expected) + _audio_problems(m, expected)
    if problems:
        raise VerificationFailed("output failed verification: " + "; ".join(problems))
    span = _audio_span(m, 1 / float(expected.frame_rate))
    return Verification(
        frame_count=m.count,
        expected_frame_count=expected.frames,
        duration_seconds=round(m.count * (1 / float(expected.frame_rate)), 6),
        first_frame_seconds=round(m.first, 6),
        last_frame_seconds=round(m.last, 6),
        decode_errors=len(lines),
        frames_decoded=decoded,
        audio_duration_seconds=None if span is None else round(span[0], 6),
        audio_video_delta_seconds=None if span is None else round(span[1], 6),
        passed=True,
    )


def verify_cut(plan: CutPlan, path: Path, ctx: RunContext) -> Verification:
    """The verify step: `path` against what `plan` says the output will be."""
    return verify_output(path, Expected.of(plan), ctx)
