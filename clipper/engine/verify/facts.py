"""What a written output holds, read as cheaply as its container allows.

Two passes, sized to stay cheap next to the cut itself:

1. Packets and streams (no decoding): every stream's kind and shape, the video's
   presentation times and first-packet keyframe flag, each audio stream's packets. MP4/MOV
   outputs are read in-process from their moov (an ffprobe start costs about as much as a
   10 s stream copy); MKV and MPEG-TS outputs by one ffprobe that lists packets and streams.
2. Decoding at `-v error`: the whole file, or only given intervals (the re-encoded parts and
   where parts meet), with every decoded frame's size and field flags. The same ffprobe
   reports the streams in full, so an MP4 that gets decoded is also described in full.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clipper.engine.context import RunContext
from clipper.engine.ffmpeg import inputs, runner
from clipper.engine.media.model import MediaInfo, parse_media_info
from clipper.engine.media.mp4index import read_tracks
from clipper.engine.media.mp4probe import open_movie
from clipper.errors import EngineError, InvalidMedia, VerificationFailed

#: Our own outputs only: the formats Clipper writes.
OUTPUT_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mpegts"

Interval = tuple[float, float]

#: Stream facts the in-process MP4/MOV reader speaks for (the rest needs ffprobe).
IN_PROCESS_FIELDS = frozenset(
    {"codec", "width", "height", "rotation", "language", "disposition", "sample_rate",
     "channels"}
)  # fmt: skip
#: Everything ffprobe's stream listing says.
ALL_FIELDS = IN_PROCESS_FIELDS | {
    "profile", "pix_fmt", "field_order", "color_primaries", "color_transfer", "color_space",
    "channel_layout", "title",
}  # fmt: skip


@dataclass(frozen=True)
class StreamFacts:
    """One stream of the output as read back; `known` names the fields the reader sets."""

    kind: str  # "video", "audio", "data", "subtitle"
    values: dict[str, Any]
    known: frozenset[str]


@dataclass
class PacketFacts:
    """What the packet pass establishes."""

    #: None when the in-process reader cannot describe the streams (ffprobe then does).
    streams: list[StreamFacts] | None
    video_pts: list[float]
    first_is_key: bool
    #: Per audio stream, in order: (time, duration) of each packet.
    audio: list[list[tuple[float, float]]]
    #: The video's container tick in seconds (1/timescale; Matroska 1 ms; MPEG-TS 1/90000).
    tick_seconds: float
    reader: str  # "moov" or "ffprobe"
    #: How many chapters the file holds (None with `streams`: ffprobe tells).
    chapters: int | None = None


@dataclass
class DecodeFacts:
    """What the decode pass establishes."""

    frames: int
    errors: list[str]
    #: (width, height) of each decoded frame, and (interlaced, top field first) of each.
    sizes: list[tuple[int, int]] = field(default_factory=list)
    fields: list[tuple[int, int]] = field(default_factory=list)
    #: The video stream as ffprobe describes it in full (None when nothing was decoded).
    video: StreamFacts | None = None


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


def _media_streams(media: MediaInfo, known: frozenset[str]) -> list[StreamFacts]:
    """Stream facts from a MediaInfo (video, then audio, then a timecode track if any)."""
    v = media.video
    streams = [StreamFacts("video", {
        "codec": v.codec, "width": v.width, "height": v.height, "rotation": v.rotation,
        "language": v.language, "disposition": v.disposition, "profile": v.profile,
        "pix_fmt": v.pix_fmt, "field_order": v.field_order,
        "color_primaries": v.color_primaries, "color_transfer": v.color_transfer,
        "color_space": v.color_space,
    }, known)]  # fmt: skip
    for a in media.audio:
        streams.append(StreamFacts("audio", {
            "codec": a.codec, "sample_rate": a.sample_rate, "channels": a.channels,
            "channel_layout": a.channel_layout, "language": a.language, "title": a.title,
            "disposition": a.disposition,
        }, known))  # fmt: skip
    if media.start_timecode is not None:
        streams.append(StreamFacts("data", {"codec": "tmcd"}, frozenset({"codec"})))
    return streams


def ffprobe_streams(data: dict[str, Any]) -> list[StreamFacts]:
    """Every stream of an ffprobe `-show_streams` listing, in order (pure)."""
    described: dict[int, StreamFacts] = {}
    try:
        media = parse_media_info({"format": {"format_name": "x"}, **data})
    except InvalidMedia:
        media = None  # no usable video stream: listed by kind only; the layout check says so
    if media is not None:
        indices = [media.video.index, *(a.index for a in media.audio)]
        described = dict(zip(indices, _media_streams(media, ALL_FIELDS), strict=False))
    found: list[StreamFacts] = []
    for s in data.get("streams") or []:
        index = int(s.get("index", -1))
        kind = str(s.get("codec_type") or "unknown")
        if index in described:
            found.append(described[index])
        else:
            codec = str(s.get("codec_tag_string") if kind == "data" else s.get("codec_name"))
            found.append(StreamFacts(kind, {"codec": codec}, frozenset({"codec"})))
    return found


def _tick(time_base: str | None) -> float:
    num, _, den = (time_base or "1/90000").partition("/")
    try:
        return int(num) / int(den)
    except (ValueError, ZeroDivisionError):
        return 1 / 90000


def packets_in_process(path: Path) -> PacketFacts | None:
    """The packet pass of an MP4/MOV output from its moov (no ffprobe); None for others."""
    tracks = read_tracks(path)
    if tracks is None:
        return None
    video = next((t for t in tracks if t.handler == "vide"), None)
    if video is None:
        return None  # let ffprobe say what the file is
    audio = [
        list(zip(t.pts_seconds, t.durations_seconds, strict=True))
        for t in tracks
        if t.handler == "soun"
    ]
    # The streams from the same moov; the reader declines some files it cannot time
    # (e.g. copied Matroska timestamps, 33/34 ms apart): ffprobe describes those.
    movie = open_movie(path)
    return PacketFacts(
        # A moov the reader takes holds no chapters: it declines chapter tracks and lists.
        chapters=None if movie is None else 0,
        streams=None if movie is None else _media_streams(movie.media, IN_PROCESS_FIELDS),
        video_pts=list(video.pts_seconds),
        first_is_key=video.first_is_sync and bool(video.pts_seconds),
        audio=audio,
        tick_seconds=1 / video.timescale if video.timescale else 1 / 90000,
        reader="moov",
    )


def packets_by_ffprobe(path: Path, ctx: RunContext) -> PacketFacts:
    """The packet pass by one ffprobe: packets and streams (MKV, MPEG-TS, unusual MP4)."""
    data, _ = _probe(
        path,
        [
            "-show_streams",
            "-show_chapters",
            "-show_entries",
            "packet=stream_index,pts_time,duration_time,flags",
        ],
        ctx,
    )
    streams = data.get("streams") or []
    kinds = {int(s["index"]): str(s.get("codec_type")) for s in streams}
    audio_indices = sorted(i for i, k in kinds.items() if k == "audio")
    video_index = min((i for i, k in kinds.items() if k == "video"), default=None)
    video_tb = next((s.get("time_base") for s in streams if s.get("index") == video_index), None)
    video_pts: list[float] = []
    first_is_key = False
    audio: dict[int, list[tuple[float, float]]] = {i: [] for i in audio_indices}
    for p in data.get("packets") or []:
        pts = _float(p.get("pts_time"))
        index = int(p.get("stream_index", -1))
        if pts is None:
            continue
        if index == video_index:
            if not video_pts:
                first_is_key = "K" in str(p.get("flags", ""))
            video_pts.append(pts)
        elif index in audio:
            audio[index].append((pts, _float(p.get("duration_time")) or 0.0))
    return PacketFacts(
        streams=ffprobe_streams(data),
        video_pts=video_pts,
        first_is_key=first_is_key,
        audio=[audio[i] for i in audio_indices],
        tick_seconds=_tick(video_tb),
        reader="ffprobe",
        chapters=len(data.get("chapters") or []),
    )


def streams_by_ffprobe(path: Path, ctx: RunContext) -> tuple[list[StreamFacts], int]:
    """The streams and the chapter count alone, when the packet pass could not tell them."""
    data, _ = _probe(path, ["-show_streams", "-show_chapters"], ctx)
    return ffprobe_streams(data), len(data.get("chapters") or [])


def _merge(intervals: Sequence[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def decode(
    path: Path, base: float, intervals: Sequence[Interval] | None, ctx: RunContext
) -> DecodeFacts:
    """Decode the video (all of it, or intervals from `base`): the frames decoded, their
    sizes and field flags, the error lines, and the streams as ffprobe lists them."""
    if intervals is not None and not intervals:
        return DecodeFacts(0, [])
    entries = "frame=best_effort_timestamp_time,width,height,interlaced_frame,top_field_first"
    extra = ["-show_streams", "-select_streams", "v:0", "-show_entries", entries]
    if intervals is not None:
        spec = ",".join(f"{base + a:.6f}%{base + b:.6f}" for a, b in _merge(intervals))
        extra += ["-read_intervals", spec]
    # -select_streams limits the stream listing to the video: its full description.
    data, errors = _probe(path, extra, ctx)
    frames = data.get("frames") or []
    video = [s for s in ffprobe_streams(data) if s.kind == "video"]
    return DecodeFacts(
        frames=len(frames),
        errors=[line for line in errors.splitlines() if line.strip()],
        sizes=[(int(f.get("width", 0)), int(f.get("height", 0))) for f in frames],
        fields=[
            (int(f.get("interlaced_frame", 0)), int(f.get("top_field_first", 0))) for f in frames
        ],
        video=video[0] if video else None,
    )
