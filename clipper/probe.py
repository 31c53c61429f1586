"""ffprobe → `MediaInfo`, and packets (keyframes) near cut points only.

One `ffprobe -show_format -show_streams` per source (cacheable via to_dict/from_dict), plus
packet listings in small read intervals around the cut points: never a scan of the whole file.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from clipper import ffmpeg
from clipper.errors import EngineError, InvalidMedia
from clipper.timecode import parse_frame_rate

#: Seconds read before the end of a file whose index has no frame count, to find its last frame.
TAIL_PROBE_SECONDS = 5
#: Wall-clock limit for one ffprobe call.
PROBE_TIMEOUT_SECONDS = 60

#: ffprobe format_name (first entry) → short container name.
CONTAINERS = {"mov": "mov", "matroska": "matroska", "mpegts": "mpegts", "mxf": "mxf"}


@dataclass(frozen=True)
class VideoInfo:
    """The first video stream."""

    index: int
    codec: str
    profile: str | None
    level: int | None
    pix_fmt: str | None
    width: int
    height: int
    frame_rate: Fraction
    time_base: Fraction
    has_b_frames: int
    field_order: str | None
    color_range: str | None
    color_space: str | None
    color_transfer: str | None
    color_primaries: str | None
    bit_rate: int | None
    start_seconds: float


@dataclass(frozen=True)
class AudioInfo:
    """One audio stream."""

    index: int
    codec: str
    profile: str | None
    sample_rate: int
    channels: int
    channel_layout: str | None
    bit_rate: int | None


@dataclass(frozen=True)
class MediaInfo:
    """What Clipper knows about a source after one probe."""

    container: str  # "mov" (MP4/MOV family), "matroska", "mpegts", "mxf", …
    format_name: str
    major_brand: str | None
    duration_seconds: float
    size_bytes: int | None
    format_start_seconds: float
    video: VideoInfo
    audio: tuple[AudioInfo, ...] = ()
    start_timecode: str | None = None
    frame_count: int = 0
    encoder: str | None = None
    #: The x264 settings the source carries in its SEI ("cabac=1 ref=3 …"); "" when it has
    #: none, None when not read (only re-encoding needs them).
    x264_options: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def frame_rate(self) -> Fraction:
        """The video frame rate (exact)."""
        return self.video.frame_rate

    @property
    def is_mp4(self) -> bool:
        """True for the ISO/MP4 side of the mov demuxer (as opposed to QuickTime .mov)."""
        return self.container == "mov" and (self.major_brand or "").strip() != "qt"

    def frame_pts(self, index: int) -> Fraction:
        """Seconds from the start of the file (as `-ss` counts) to frame `index` (CFR model)."""
        offset = Fraction(self.video.start_seconds) - Fraction(self.format_start_seconds)
        return offset + Fraction(index) / self.video.frame_rate

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (rationals as "num/den")."""
        data = asdict(self)
        for key in ("frame_rate", "time_base"):
            data["video"][key] = _rational_text(data["video"][key])
        data["audio"] = [dict(a) for a in data["audio"]]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MediaInfo:
        """Rebuild from `to_dict()` output."""
        video = dict(data["video"])
        video["frame_rate"] = Fraction(video["frame_rate"])
        video["time_base"] = Fraction(video["time_base"])
        rest = {k: v for k, v in data.items() if k not in ("video", "audio")}
        return cls(
            video=VideoInfo(**video),
            audio=tuple(AudioInfo(**a) for a in data.get("audio", [])),
            **rest,
        )


@dataclass(frozen=True)
class Packet:
    """One video packet, in decode order."""

    pts: float
    dts: float | None
    keyframe: bool


def _rational_text(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any, default: float = 0.0) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return default
    return result if math.isfinite(result) else default


def _probe_argv(source: str | Path, ffprobe_path: str, *extra: str) -> list[str]:
    opts = ffmpeg.input_options(source)
    argv = [ffprobe_path, "-v", "error", "-of", "json"]
    for key, value in opts.items():
        argv += [f"-{key}", str(value)]
    return [*argv, *extra, ffmpeg.media_url(source)]


def _run_json(argv: list[str], cancel: threading.Event | None) -> dict[str, Any]:
    try:
        result = ffmpeg.run(
            argv, timeout_seconds=PROBE_TIMEOUT_SECONDS, cancel=cancel, capture_stdout=True
        )
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


def parse_media_info(data: dict[str, Any]) -> MediaInfo:
    """Build MediaInfo from `ffprobe -show_format -show_streams` JSON (pure)."""
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    if not fmt:
        raise InvalidMedia("not a media file")
    videos = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    if not videos:
        raise InvalidMedia("the file has no video stream")
    v = videos[0]
    rate_text = v.get("r_frame_rate") or "0/0"
    if rate_text in ("0/0", "") or Fraction(*map(int, rate_text.split("/"))) > 240:
        rate_text = v.get("avg_frame_rate") or "0/0"
    if rate_text in ("0/0", ""):
        raise InvalidMedia("the video stream has no frame rate")
    rate = parse_frame_rate(rate_text)
    width, height = _int(v.get("width")) or 0, _int(v.get("height")) or 0
    if width <= 0 or height <= 0:
        raise InvalidMedia("the video stream has no picture size")
    tags = {str(k).lower(): str(val) for k, val in (fmt.get("tags") or {}).items()}
    timecode = (v.get("tags") or {}).get("timecode")
    for s in streams:  # mov/mp4 carry it on the tmcd data stream
        timecode = timecode or (s.get("tags") or {}).get("timecode")
    timecode = timecode or tags.get("timecode")
    video = VideoInfo(
        index=int(v.get("index", 0)),
        codec=str(v.get("codec_name") or "unknown"),
        profile=v.get("profile"),
        level=_int(v.get("level")),
        pix_fmt=v.get("pix_fmt"),
        width=width,
        height=height,
        frame_rate=rate,
        time_base=Fraction(v.get("time_base") or "1/90000"),
        has_b_frames=_int(v.get("has_b_frames")) or 0,
        field_order=v.get("field_order"),
        color_range=v.get("color_range"),
        color_space=v.get("color_space"),
        color_transfer=v.get("color_transfer"),
        color_primaries=v.get("color_primaries"),
        bit_rate=_int(v.get("bit_rate")),
        start_seconds=_float(v.get("start_time"), _float(fmt.get("start_time"))),
    )
    audio = tuple(
        AudioInfo(
            index=int(s.get("index", 0)),
            codec=str(s.get("codec_name") or "unknown"),
            profile=s.get("profile"),
            sample_rate=_int(s.get("sample_rate")) or 48000,
            channels=_int(s.get("channels")) or 2,
            channel_layout=s.get("channel_layout"),
            bit_rate=_int(s.get("bit_rate")),
        )
        for s in streams
        if s.get("codec_type") == "audio"
    )
    duration = _float(v.get("duration")) or _float(fmt.get("duration"))
    frames = _int(v.get("nb_frames")) or 0
    if frames <= 0:
        frames = max(1, round(duration * float(rate)))
    format_name = str(fmt.get("format_name") or "")
    return MediaInfo(
        container=CONTAINERS.get(format_name.split(",")[0], format_name.split(",")[0]),
        format_name=format_name,
        major_brand=tags.get("major_brand"),
        duration_seconds=frames / float(rate),
        size_bytes=_int(fmt.get("size")),
        format_start_seconds=_float(fmt.get("start_time")),
        video=video,
        audio=audio,
        start_timecode=timecode,
        frame_count=frames,
        encoder=(v.get("tags") or {}).get("encoder") or tags.get("encoder"),
    )


def probe(
    source: str | Path,
    *,
    ffprobe_path: str = "ffprobe",
    ffmpeg_path: str = "ffmpeg",
    cancel: threading.Event | None = None,
    encoder_settings: bool = True,
) -> MediaInfo:
    """Probe a source; InvalidMedia when it is not a video Clipper can read.

    `encoder_settings` also reads the x264 settings from the first frame (one more small
    FFmpeg run); stream copies do without them.
    """
    data = _run_json(_probe_argv(source, ffprobe_path, "-show_format", "-show_streams"), cancel)
    media = parse_media_info(data)
    has_count = any(
        s.get("codec_type") == "video" and _int(s.get("nb_frames")) for s in data["streams"]
    )
    if not has_count:
        media = _count_from_tail(source, media, ffprobe_path, cancel)
    if encoder_settings:
        media = with_encoder_settings(source, media, ffmpeg_path=ffmpeg_path, cancel=cancel)
    return media


def with_encoder_settings(
    source: str | Path,
    media: MediaInfo,
    *,
    ffmpeg_path: str = "ffmpeg",
    cancel: threading.Event | None = None,
) -> MediaInfo:
    """`media` with `x264_options` read from the source (once; H.264 only)."""
    if media.video.codec != "h264" or media.x264_options is not None:
        return media
    options = read_x264_options(source, media, ffmpeg_path=ffmpeg_path, cancel=cancel)
    return replace(media, x264_options=options or "")


#: Where x264 writes its settings into the stream (a user-data SEI in the first frame).
_X264_SEI = re.compile(r"x264 - core \d+.*? - options: ([^\x00\n]*)")


def read_x264_options(
    source: str | Path,
    media: MediaInfo,
    *,
    ffmpeg_path: str = "ffmpeg",
    cancel: threading.Event | None = None,
) -> str | None:
    """The x264 settings string from the first video packet's SEI (None if not x264)."""
    argv = [ffmpeg_path, "-nostdin", "-v", "error"]
    for key, value in ffmpeg.input_options(source).items():
        argv += [f"-{key}", str(value)]
    argv += ["-i", ffmpeg.media_url(source), "-map", f"0:{media.video.index}"]
    argv += ["-c", "copy", "-frames:v", "1", "-bsf:v", "h264_mp4toannexb", "-f", "h264", "-"]
    try:
        result = ffmpeg.run(
            argv, timeout_seconds=PROBE_TIMEOUT_SECONDS, cancel=cancel, capture_stdout=True
        )
    except EngineError:
        return None
    match = _X264_SEI.search(result.stdout)
    return match.group(1).strip() if match else None


def _count_from_tail(
    source: str | Path, media: MediaInfo, ffprobe_path: str, cancel: threading.Event | None
) -> MediaInfo:
    """Containers without a frame count (MKV, MPEG-TS): read the last packets' timestamps."""
    start = max(0.0, media.format_start_seconds + media.duration_seconds - TAIL_PROBE_SECONDS)
    packets = read_packets(source, media, [(start, None)], ffprobe_path=ffprobe_path, cancel=cancel)
    if not packets:
        return media
    last = max(p.pts for p in packets)
    frames = round((Fraction(last) - Fraction(media.video.start_seconds)) * media.frame_rate) + 1
    frames = max(1, frames)
    return replace(media, frame_count=frames, duration_seconds=frames / float(media.frame_rate))


def read_packets(
    source: str | Path,
    media: MediaInfo,
    intervals: Sequence[tuple[float, float | None]],
    *,
    ffprobe_path: str = "ffprobe",
    cancel: threading.Event | None = None,
) -> list[Packet]:
    """Video packets (decode order) in absolute-time read intervals (start, end or None)."""
    spec = ",".join(f"{max(0.0, a):.6f}%" + ("" if b is None else f"{b:.6f}") for a, b in intervals)
    argv = _probe_argv(
        source,
        ffprobe_path,
        "-select_streams",
        f"{media.video.index}",
        "-show_entries",
        "packet=pts_time,dts_time,flags",
        "-read_intervals",
        spec,
    )
    data = _run_json(argv, cancel)
    packets: list[Packet] = []
    seen: set[tuple[float, float | None]] = set()
    for p in data.get("packets") or []:
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
