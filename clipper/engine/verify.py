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
import threading
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from clipper.engine.ffmpeg import runner as ffmpeg
from clipper.engine.media.mp4index import read_tracks
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


def _probe(
    path: Path,
    ffprobe_path: str,
    extra: list[str],
    timeout: float | None,
    cancel: threading.Event | None,
) -> tuple[dict[str, Any], str]:
    argv = [
        ffprobe_path, "-v", "error", "-protocol_whitelist", "file",
        "-format_whitelist", OUTPUT_FORMATS, "-of", "json", *extra, ffmpeg.output_url(path),
    ]  # fmt: skip
    try:
        result = ffmpeg.run(argv, timeout_seconds=timeout, cancel=cancel, capture_stdout=True)
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
    path: Path,
    base: float,
    intervals: Sequence[Interval] | None,
    ffprobe_path: str,
    timeout: float | None,
    cancel: threading.Event | None,
) -> tuple[int, str]:
    """Decode the video (all of it, or intervals from `base`): frames decoded, error text."""
    if intervals is not None and not intervals:
        return 0, ""
    extra = ["-select_streams", "v:0", "-show_entries", "frame=best_effort_timestamp_time"]
    if intervals is not None:
        spec = ",".join(f"{base + a:.6f}%{base + b:.6f}" for a, b in _merge(intervals))
        extra += ["-read_intervals", spec]
    data, errors = _probe(path, ffprobe_path, extra, timeout, cancel)
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


def _packets_by_ffprobe(
    path: Path, ffprobe_path: str, timeout: float | None, cancel: threading.Event | None
) -> PacketFacts:
    """The packet facts from ffprobe's packet listing (MKV, MPEG-TS, unusual MP4)."""
    data, _ = _probe(
        path,
        ffprobe_path,
        [
            "-show_entries",
            "packet=stream_index,pts_time,duration_time,flags:stream=index,codec_type",
        ],
        timeout,
        cancel,
    )
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


def verify_output(
    path: Path,
    *,
    expected_frames: int,
    frame_rate: Fraction,
    expect_audio: bool,
    decode_intervals: Sequence[Interval] | None = None,
    ffprobe_path: str = "ffprobe",
    timeout_seconds: float | None = None,
    cancel: threading.Event | None = None,
) -> Verification:
    """Check frame count, timestamps, decode errors and audio length; VerificationFailed if not.

    `decode_intervals` are seconds from the output's first frame; None decodes everything,
    an empty list nothing (a pure stream copy: packets are the source's own).
    """
    facts = _packets_in_process(path) or _packets_by_ffprobe(
        path, ffprobe_path, timeout_seconds, cancel
    )
    video_ts, first_is_key, audio = facts
    frame_seconds = 1 / float(frame_rate)
    count = len(video_ts)
    first = min(video_ts, default=0.0)
    last = max(video_ts, default=0.0)
    duration = count * frame_seconds
    decoded, errors = _decode(path, first, decode_intervals, ffprobe_path, timeout_seconds, cancel)
    audio_duration = delta = lead = None
    audio_frame = max((d for _, d in audio), default=0.0)
    if audio:
        audio_start = min(t for t, _ in audio)
        audio_end = max(t + d for t, d in audio)
        audio_duration = audio_end - audio_start
        delta = audio_end - (last + frame_seconds)
        # Containers without edit lists (MPEG-TS, MKV) keep the encoder's priming samples,
        # timestamped before the first video frame: allowed at the start, one frame's worth.
        lead = first - audio_start
    error_lines = [line for line in errors.splitlines() if line.strip()]
    problems = []
    if count != expected_frames:
        problems.append(f"{count} video frames, {expected_frames} expected")
    if decode_intervals is None and decoded != count:
        problems.append(f"{decoded} of {count} video frames decode")
    if count and not first_is_key:
        problems.append("the video does not start with a keyframe")
    if error_lines:
        problems.append(f"{len(error_lines)} decode error line(s): {error_lines[0][:200]}")
    if count and abs((last - first) - (count - 1) * frame_seconds) > frame_seconds / 2:
        problems.append(f"frame timestamps span {last - first:.4f} s for {count} frames")
    if expect_audio and audio_duration is None:
        problems.append("the audio stream is missing")
    if delta is not None and lead is not None:
        tolerance = audio_frame + TIMESTAMP_SLACK_SECONDS
        if abs(delta) > tolerance:
            problems.append(f"audio ends {delta * 1000:.1f} ms away from the video's end")
        if abs(lead) > tolerance:
            problems.append(f"audio starts {lead * 1000:.1f} ms away from the video's start")
    if problems:
        raise VerificationFailed("output failed verification: " + "; ".join(problems))
    return Verification(
        frame_count=count,
        expected_frame_count=expected_frames,
        duration_seconds=round(duration, 6),
        first_frame_seconds=round(first, 6),
        last_frame_seconds=round(last, 6),
        decode_errors=len(error_lines),
        frames_decoded=decoded,
        audio_duration_seconds=None if audio_duration is None else round(audio_duration, 6),
        audio_video_delta_seconds=None if delta is None else round(delta, 6),
        passed=True,
    )
