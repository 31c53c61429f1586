"""Stage the span a cut needs from a remote source into one local file (one stream copy).

Every later process (head/tail encodes, copied middle, audio, fast copy) then reads the
local file instead of re-reading overlapping stretches of the remote source over HTTP.

The copy keeps the source's timestamps (`-copyts`) shifted by a fixed STAGE_OFFSET_SECONDS
(so B-frame DTS before zero stay positive); the staged `MediaInfo` moves the video start by
the same offset, so `frame_pts()` and every `-ss` the engine computes select the same frames
as on the original. The container is MPEG-TS (exact 90 kHz timestamps) when it can carry the
codecs, else Matroska when every frame time is a whole millisecond; otherwise no staging.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg as ffmpeg_python

from clipper.engine.context import RunContext
from clipper.engine.ffmpeg import inputs, runner
from clipper.engine.media.model import MediaInfo
from clipper.engine.plan.parts import FrameRange

#: Added to every staged timestamp: keeps negative B-frame DTS of the first GOP positive.
STAGE_OFFSET_SECONDS = 10
#: Kept after the last frame wanted: frames it references (B-frames) and audio to pad.
END_MARGIN_SECONDS = 0.5
#: MPEG-TS sources seek by byte position: start this much earlier to reach the keyframe.
TS_LEAD_SECONDS = 5.0
#: Segments further apart than this are not staged together (the gap would be read).
MAX_GAP_SECONDS = 30.0

_TS_VIDEO = {"h264", "hevc", "mpeg2video"}
_TS_AUDIO = {"aac", "mp3", "ac3", "eac3", "mp2", "opus"}


def stage_container(media: MediaInfo) -> str | None:
    """ "mpegts", "matroska" or None: the container that keeps `media`'s frames exact."""
    if media.video.codec in _TS_VIDEO and all(a.codec in _TS_AUDIO for a in media.audio):
        return "mpegts"
    frame_ms = Fraction(1000) / media.frame_rate
    if frame_ms.denominator == 1:
        return "matroska"
    return None


def stage_window(media: MediaInfo, ranges: list[FrameRange]) -> tuple[float, float] | None:
    """(`-ss`, `-t`) in source seconds for the one span all ranges read; None if too sparse.

    The input seek lands on the keyframe at or before the first in-point (MP4/MOV and MKV
    seek that way; MPEG-TS by byte position, hence TS_LEAD_SECONDS earlier) and the default
    copy keeps everything from that keyframe on, so no keyframe needs to be known beforehand.
    """
    ordered = sorted((r.start, r.end) for r in ranges)
    rate = media.frame_rate
    for (_, gap_from), (gap_to, _) in itertools.pairwise(ordered):
        if Fraction(gap_to - gap_from) / rate > MAX_GAP_SECONDS:
            return None
    first = ordered[0][0]
    last = max(end for _, end in ordered)
    begin = Fraction(0)
    if first > 0 and media.container == "mpegts":
        begin = max(Fraction(0), media.frame_pts(first) - Fraction(TS_LEAD_SECONDS))
    elif first > 0:
        # A quarter frame late: rounding can never move the seek to the keyframe before.
        begin = media.frame_pts(first) + Fraction(1, 4) / rate
    stop = media.frame_pts(last) + Fraction(END_MARGIN_SECONDS)
    return float(begin), float(stop - begin)


def stage_argv(
    source: str | Path,
    media: MediaInfo,
    window: tuple[float, float],
    path: Path,
    container: str,
    *,
    ffmpeg_path: str,
) -> list[str]:
    """One stream copy of the window, timestamps kept (plus the fixed offset)."""
    begin, seconds = window
    opts: dict[str, Any] = {"t": f"{seconds:.6f}", "copyts": None}
    if begin > 0:
        opts["ss"] = f"{begin:.6f}"
    node = inputs.source_input(source, **opts)
    streams: list[Any] = [node[f"{media.video.index}"]]
    streams += [node[f"{a.index}"] for a in media.audio]
    out: dict[str, Any] = {
        "c": "copy",
        "f": container,
        "output_ts_offset": STAGE_OFFSET_SECONDS,
        "avoid_negative_ts": "disabled",
    }
    if container == "mpegts":
        # No mux delay: the timestamps written are exactly the source's plus the offset.
        out.update({"muxdelay": 0, "muxpreload": 0, "mpegts_copyts": 1})
    output = ffmpeg_python.output(*streams, inputs.output_url(path), **out)
    return inputs.compile_argv(output, ffmpeg_path=ffmpeg_path, progress=False)


def _format_start(path: Path, ctx: RunContext) -> float:
    argv = [
        ctx.ffprobe_path,
        "-v",
        "error",
        "-protocol_whitelist",
        "file",
        "-show_entries",
        "format=start_time,size",
        "-of",
        "json",
        inputs.output_url(path),
    ]
    result = runner.run(argv, ctx, capture_stdout=True)
    return float(json.loads(result.stdout)["format"]["start_time"])


def stage(
    source: str | Path,
    media: MediaInfo,
    ranges: list[FrameRange],
    ctx: RunContext,
) -> tuple[Path, MediaInfo] | None:
    """Copy the needed span into the cut's scratch folder; (local path, its MediaInfo) or
    None if unsuited."""
    container = stage_container(media)
    window = stage_window(media, ranges)
    if container is None or window is None:
        return None
    path = ctx.scratch / ("staged.ts" if container == "mpegts" else "staged.mkv")
    argv = stage_argv(source, media, window, path, container, ffmpeg_path=ctx.ffmpeg_path)
    runner.run(argv, ctx)
    start = _format_start(path, ctx)
    video = replace(
        media.video,
        index=0,
        start_seconds=media.video.start_seconds + STAGE_OFFSET_SECONDS,
    )
    audio = tuple(replace(a, index=i + 1) for i, a in enumerate(media.audio))
    staged = replace(
        media,
        container=container,
        format_name=container,
        format_start_seconds=start,
        size_bytes=path.stat().st_size,
        video=video,
        audio=audio,
    )
    return path, staged
