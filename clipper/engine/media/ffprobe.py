"""ffprobe → `MediaInfo`, and packets (keyframes) near cut points only.

One `ffprobe -show_format -show_streams` per source (cacheable via to_dict/from_dict), plus
packet listings in small read intervals around the cut points: never a scan of the whole file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from clipper.engine.context import DEFAULT_CONTEXT, RunContext
from clipper.engine.ffmpeg import inputs, runner
from clipper.engine.media.model import (
    AudioInfo,
    MediaInfo,
    Packet,
    VideoInfo,
    int_or_none,
    parse_media_info,
)
from clipper.errors import EngineError, InvalidMedia

__all__ = [
    "AudioInfo",
    "MediaInfo",
    "Packet",
    "VideoInfo",
    "parse_media_info",
    "probe",
    "probe_with_packets",
    "read_packets",
    "read_x264_options",
    "with_encoder_settings",
]

#: Seconds read before the end of a file whose index has no frame count, to find its last frame.
TAIL_PROBE_SECONDS = 5
#: Wall-clock limit for one ffprobe call.
PROBE_TIMEOUT_SECONDS = 60


def _probe_argv(source: str | Path, ffprobe_path: str, *extra: str) -> list[str]:
    opts = inputs.input_options(source)
    argv = [ffprobe_path, "-v", "error", "-of", "json"]
    for key, value in opts.items():
        argv += [f"-{key}", str(value)]
    return [*argv, *extra, inputs.media_url(source)]


def _run_json(argv: list[str], ctx: RunContext) -> dict[str, Any]:
    try:
        result = runner.run(argv, ctx.with_timeout(PROBE_TIMEOUT_SECONDS), capture_stdout=True)
    except EngineError as exc:
        raise InvalidMedia(f"not a readable media file: {_first_line(exc.message)}") from exc
    try:
        data = json.loads(result.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidMedia("ffprobe returned unreadable output") from exc
    return data if isinstance(data, dict) else {}


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "unknown error"


def probe(
    source: str | Path, ctx: RunContext = DEFAULT_CONTEXT, *, encoder_settings: bool = True
) -> MediaInfo:
    """Probe a source; InvalidMedia when it is not a video Clipper can read.

    `encoder_settings` also reads the x264 settings from the first frame (one more small
    FFmpeg run); stream copies do without them.
    """
    argv = _probe_argv(source, ctx.ffprobe_path, "-show_format", "-show_streams", "-show_chapters")
    data = _run_json(argv, ctx)
    media = parse_media_info(data)
    has_count = any(
        s.get("codec_type") == "video" and int_or_none(s.get("nb_frames")) for s in data["streams"]
    )
    if not has_count:
        media = _count_from_tail(source, media, ctx)
    if encoder_settings:
        media = with_encoder_settings(source, media, ctx)
    return media


def with_encoder_settings(
    source: str | Path, media: MediaInfo, ctx: RunContext = DEFAULT_CONTEXT
) -> MediaInfo:
    """`media` with `x264_options` read from the source (once; H.264 only)."""
    if media.video.codec != "h264" or media.x264_options is not None:
        return media
    options = read_x264_options(source, media, ctx)
    return replace(media, x264_options=options or "")


#: Where x264 writes its settings into the stream (a user-data SEI in the first frame).
_X264_SEI = re.compile(r"x264 - core \d+.*? - options: ([^\x00\n]*)")


def read_x264_options(
    source: str | Path, media: MediaInfo, ctx: RunContext = DEFAULT_CONTEXT
) -> str | None:
    """The x264 settings string from the first video packet's SEI (None if not x264)."""
    argv = [ctx.ffmpeg_path, "-nostdin", "-v", "error"]
    for key, value in inputs.input_options(source).items():
        argv += [f"-{key}", str(value)]
    argv += ["-i", inputs.media_url(source), "-map", f"0:{media.video.index}"]
    argv += ["-c", "copy", "-frames:v", "1", "-bsf:v", "h264_mp4toannexb", "-f", "h264", "-"]
    try:
        result = runner.run(argv, ctx.with_timeout(PROBE_TIMEOUT_SECONDS), capture_stdout=True)
    except EngineError:
        return None
    match = _X264_SEI.search(result.stdout)
    return match.group(1).strip() if match else None


def _count_from_tail(source: str | Path, media: MediaInfo, ctx: RunContext) -> MediaInfo:
    """Containers without a frame count (MKV, MPEG-TS): read the last packets' timestamps."""
    start = max(0.0, media.format_start_seconds + media.duration_seconds - TAIL_PROBE_SECONDS)
    packets = read_packets(source, media, [(start, None)], ctx)
    if not packets:
        return media
    last = max(p.pts for p in packets)
    frames = round((Fraction(last) - Fraction(media.video.start_seconds)) * media.frame_rate) + 1
    frames = max(1, frames)
    return replace(media, frame_count=frames, duration_seconds=frames / float(media.frame_rate))


def _interval_spec(intervals: Sequence[tuple[float, float | None]]) -> str:
    return ",".join(f"{max(0.0, a):.6f}%" + ("" if b is None else f"{b:.6f}") for a, b in intervals)


def read_packets(
    source: str | Path,
    media: MediaInfo,
    intervals: Sequence[tuple[float, float | None]],
    ctx: RunContext = DEFAULT_CONTEXT,
) -> list[Packet]:
    """Video packets (decode order) in absolute-time read intervals (start, end or None)."""
    spec = _interval_spec(intervals)
    argv = _probe_argv(
        source,
        ctx.ffprobe_path,
        "-select_streams",
        f"{media.video.index}",
        "-show_entries",
        "packet=pts_time,dts_time,flags",
        "-read_intervals",
        spec,
    )
    return _parse_packets(_run_json(argv, ctx), None)


def _parse_packets(data: dict[str, Any], video_index: int | None) -> list[Packet]:
    """Packets from ffprobe JSON (only `video_index`'s when given), each listed once."""
    packets: list[Packet] = []
    seen: set[tuple[float, float | None]] = set()
    for p in data.get("packets") or []:
        if video_index is not None and int_or_none(p.get("stream_index")) != video_index:
            continue
        if p.get("pts_time") in (None, "N/A"):
            continue
        dts = p.get("dts_time")
        packet = Packet(
            pts=float(p["pts_time"]),
            dts=None if dts in (None, "N/A") else float(dts),
            keyframe="K" in str(p.get("flags", "")),
        )
        key = (packet.pts, packet.dts)
        if key not in seen:  # overlapping intervals list a packet twice
            seen.add(key)
            packets.append(packet)
    return packets


def probe_with_packets(
    source: str | Path,
    intervals: Sequence[tuple[float, float | None]],
    ctx: RunContext = DEFAULT_CONTEXT,
) -> tuple[MediaInfo, list[Packet]]:
    """`probe()` (without encoder settings) and the video packets in `intervals`, in one
    ffprobe run: saves a process when the cut points are known before the probe."""
    spec = _interval_spec(intervals)
    argv = _probe_argv(
        source,
        ctx.ffprobe_path,
        "-show_format",
        "-show_streams",
        "-show_chapters",
        "-show_entries",
        "packet=stream_index,pts_time,dts_time,flags",
        "-read_intervals",
        spec,
    )
    data = _run_json(argv, ctx)
    media = parse_media_info(data)
    if not any(
        s.get("codec_type") == "video" and int_or_none(s.get("nb_frames")) for s in data["streams"]
    ):
        media = _count_from_tail(source, media, ctx)
    return media, _parse_packets(data, media.video.index)
