"""Verify a finished output with one decoding ffprobe pass, before it counts.

The pass decodes every video and audio frame: it counts frames, reads their timestamps and
collects decode errors (anything ffprobe prints at `-v error`). Exit code 0 of the FFmpeg
that wrote the file proves nothing; this does.
"""

from __future__ import annotations

import json
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

from clipper import ffmpeg
from clipper.errors import EngineError, VerificationFailed
from clipper.report import Verification

#: Audio may differ from the video by one audio frame (the encoder's frame granularity,
#: 1024 samples for AAC) plus this slack for timestamp rounding in the container.
AUDIO_SLACK_SECONDS = 0.002
#: Samples per AAC frame, the coarsest audio frame size Clipper writes.
AUDIO_FRAME_SAMPLES = 1024
#: Our own outputs only: the formats Clipper writes.
OUTPUT_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mpegts"


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def inspect(
    path: Path,
    *,
    ffprobe_path: str = "ffprobe",
    timeout_seconds: float | None = None,
    cancel: threading.Event | None = None,
) -> tuple[dict[str, Any], str]:
    """Decode the whole file once: ffprobe frame JSON and the error text it printed."""
    argv = [
        ffprobe_path,
        "-v",
        "error",
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        OUTPUT_FORMATS,
        "-show_entries",
        "frame=media_type,best_effort_timestamp_time,nb_samples:stream=codec_type,sample_rate",
        "-of",
        "json",
        ffmpeg.output_url(path),
    ]
    try:
        result = ffmpeg.run(
            argv, timeout_seconds=timeout_seconds, cancel=cancel, capture_stdout=True
        )
    except EngineError as exc:
        raise VerificationFailed(f"the output cannot be read: {exc.message}") from exc
    return json.loads(result.stdout or "{}"), result.stderr_tail


def verify_output(
    path: Path,
    *,
    expected_frames: int,
    frame_rate: Fraction,
    expect_audio: bool,
    ffprobe_path: str = "ffprobe",
    timeout_seconds: float | None = None,
    cancel: threading.Event | None = None,
) -> Verification:
    """Check frame count, timestamps, decode errors and audio length; VerificationFailed if not."""
    data, errors = inspect(
        path, ffprobe_path=ffprobe_path, timeout_seconds=timeout_seconds, cancel=cancel
    )
    frames = data.get("frames") or []
    video_ts = [
        t
        for f in frames
        if f.get("media_type") == "video"
        and (t := _float(f.get("best_effort_timestamp_time"))) is not None
    ]
    sample_rate = next(
        (int(s["sample_rate"]) for s in data.get("streams", []) if s.get("sample_rate")), 0
    )
    audio = [
        (t, int(f.get("nb_samples") or 0))
        for f in frames
        if f.get("media_type") == "audio"
        and (t := _float(f.get("best_effort_timestamp_time"))) is not None
    ]
    frame_seconds = 1 / float(frame_rate)
    count = len(video_ts)
    first = min(video_ts, default=0.0)
    last = max(video_ts, default=0.0)
    duration = count * frame_seconds
    audio_duration = delta = lead = None
    if audio and sample_rate:
        audio_start = min(t for t, _ in audio)
        audio_end = max(t + n / sample_rate for t, n in audio)
        audio_duration = audio_end - audio_start
        delta = audio_end - (last + frame_seconds)
        # Containers without edit lists (MPEG-TS, MKV) keep the encoder's priming samples,
        # timestamped before the first video frame: allowed at the start, one frame's worth.
        lead = first - audio_start
    decode_errors = len([line for line in errors.splitlines() if line.strip()])
    problems = []
    if count != expected_frames:
        problems.append(f"{count} video frames decoded, {expected_frames} expected")
    if decode_errors:
        problems.append(f"{decode_errors} decode error line(s): {errors.splitlines()[0][:200]}")
    if count and abs((last - first) - (count - 1) * frame_seconds) > frame_seconds / 2:
        problems.append(f"frame timestamps span {last - first:.4f} s for {count} frames")
    if expect_audio and audio_duration is None:
        problems.append("the audio stream is missing")
    if delta is not None and lead is not None and sample_rate:
        tolerance = AUDIO_FRAME_SAMPLES / sample_rate + AUDIO_SLACK_SECONDS
        if abs(delta) > tolerance:
            problems.append(f"audio ends {delta * 1000:.1f} ms away from the video's end")
        if abs(lead) > tolerance:
            problems.append(f"audio starts {lead * 1000:.1f} ms away from the video's start")
    result = Verification(
        frame_count=count,
        expected_frame_count=expected_frames,
        duration_seconds=round(duration, 6),
        first_frame_seconds=round(first, 6),
        last_frame_seconds=round(last, 6),
        decode_errors=decode_errors,
        audio_duration_seconds=None if audio_duration is None else round(audio_duration, 6),
        audio_video_delta_seconds=None if delta is None else round(delta, 6),
        passed=not problems,
    )
    if problems:
        raise VerificationFailed("output failed verification: " + "; ".join(problems))
    return result
