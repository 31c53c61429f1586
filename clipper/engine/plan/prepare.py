"""Before the cut: what to read (the source, or a staged local copy of its span), the
in-process MP4/MOV reading for copies, and the plan of every segment."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from clipper.engine.ffmpeg import runner as ffmpeg
from clipper.engine.ffmpeg.staging import stage as stage_span
from clipper.engine.media import ffprobe as probing
from clipper.engine.media.model import MediaInfo, Packet
from clipper.engine.media.mp4probe import Movie, open_movie
from clipper.engine.plan.cutpoints import leading_pictures, plan_segments
from clipper.engine.plan.parts import FrameRange, SegmentPlan
from clipper.spec import Accuracy, CutSpec, Preset

__all__ = ["in_process_movie", "plan_cut", "ts_added_units"]


#: NAL unit types the MPEG-TS muxer adds in-band: parameter sets and access unit delimiters.
TS_ADDED_UNITS = {"h264": "7|8|9", "hevc": "32|33|34|35"}


def ts_added_units(source_container: str, media: MediaInfo) -> str | None:
    """NAL types to strip when `media` is an MPEG-TS stage of an MP4/MOV/MKV source."""
    if media.container != "mpegts" or source_container not in ("mov", "matroska"):
        return None
    return TS_ADDED_UNITS.get(media.video.codec)


def in_process_movie(source: str | Path, spec: CutSpec) -> Movie | None:
    """The in-process reading of a local MP4/MOV source, for cuts that copy every packet
    (one range, `fast`, `original`: nothing is re-encoded); None otherwise or if unsuited."""
    copies_only = spec.accuracy is Accuracy.FAST and spec.preset is Preset.ORIGINAL
    if not copies_only or len(spec.segments) != 1 or ffmpeg.is_remote(source):
        return None
    return open_movie(Path(ffmpeg.media_url(source).removeprefix("file:")))


def plan_cut(
    source: str | Path,
    media: MediaInfo,
    spec: CutSpec,
    ranges: list[FrameRange],
    workdir: Path,
    *,
    ffmpeg_path: str,
    ffprobe_path: str,
    staging: bool,
    listed: list[Packet] | None,
    timeout: float,
    cancel: threading.Event | None,
) -> tuple[str | Path, MediaInfo, list[SegmentPlan], list[int], list[Packet]]:
    """(what to read, its MediaInfo, plans, keyframes, packets), staging the span first
    when asked: then packets are listed from the local copy, not the remote source."""
    original, found = source, media
    if staging:
        got = stage_span(
            source,
            media,
            ranges,
            workdir,
            ffmpeg_path=ffmpeg_path,
            ffprobe_path=ffprobe_path,
            timeout=timeout,
            cancel=cancel,
        )
        if got is not None:
            source, media = got
            listed = None
    plans, keys, packets = plan_segments(
        source, media, spec, ranges, ffprobe_path=ffprobe_path, cancel=cancel, packets=listed
    )
    first = min(r.start for r in ranges)
    if source is not original and (
        not any(k <= first for k in keys) or any(leading_pictures(media, packets).values())
    ):
        # The stage began after the keyframe the first part needs (an MPEG-TS byte seek
        # landed late), or on an open-GOP keyframe whose leading pictures reference frames
        # the stage does not hold: read the source itself.
        return plan_cut(
            original,
            found,
            spec,
            ranges,
            workdir,
            ffmpeg_path=ffmpeg_path,
            ffprobe_path=ffprobe_path,
            staging=False,
            listed=None,
            timeout=timeout,
            cancel=cancel,
        )
    if any(p.mode == "encode" for plan in plans for p in plan.parts):
        # x264 writes its settings only into the source's first frame: read them there.
        x264 = probing.with_encoder_settings(
            original, found, ffmpeg_path=ffmpeg_path, cancel=cancel
        ).x264_options
        media = replace(media, x264_options=x264)
    return source, media, plans, keys, packets
