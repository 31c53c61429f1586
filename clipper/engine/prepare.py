"""The engine's first two steps, which read before they plan: the source's MediaInfo and the
packets near the cut points (in process for local MP4/MOV copies, else by ffprobe), then the
plan, staging a remote span locally first when that pays."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from clipper.engine.context import RunContext
from clipper.engine.ffmpeg import inputs
from clipper.engine.ffmpeg.staging import stage as stage_span
from clipper.engine.media import ffprobe as probing
from clipper.engine.media.model import MediaInfo, Packet
from clipper.engine.media.mp4probe import Movie, open_movie
from clipper.engine.plan.cutplan import CutPlan, SourceRead, make_plan
from clipper.engine.plan.cutpoints import (
    guess_fits,
    guessed_intervals,
    leading_pictures,
    packet_intervals,
)
from clipper.engine.plan.parts import FrameRange
from clipper.engine.plan.ranges import resolve_ranges
from clipper.spec import Accuracy, CutSpec, Preset

__all__ = ["SourceFacts", "in_process_movie", "plan_cut", "read_source"]


@dataclass(frozen=True)
class SourceFacts:
    """What the media step found: the source's MediaInfo, the frame ranges the request
    selects, and the packets near the cut points when the same read gave them."""

    media: MediaInfo
    ranges: list[FrameRange]
    packets: list[Packet] | None


def in_process_movie(source: str | Path, spec: CutSpec) -> Movie | None:
    """The in-process reading of a local MP4/MOV source, for cuts that copy every packet
    (one range, `fast`, `original`: nothing is re-encoded); None otherwise or if unsuited."""
    copies_only = spec.accuracy is Accuracy.FAST and spec.preset is Preset.ORIGINAL
    if not copies_only or len(spec.segments) != 1 or inputs.is_remote(source):
        return None
    return open_movie(Path(inputs.media_url(source).removeprefix("file:")))


def read_source(
    source: str | Path,
    spec: CutSpec,
    ctx: RunContext,
    *,
    media: MediaInfo | None = None,
    staging: bool = False,
) -> SourceFacts:
    """The media step: MediaInfo (given, read in process, or one ffprobe that also lists the
    packets near cut points it can guess before the probe), and the ranges `spec` selects."""
    movie = in_process_movie(source, spec) if media is None and not staging else None
    listed = None
    if movie is not None:
        media = movie.media
    if media is None:
        guess = None if staging else guessed_intervals(spec)
        if guess is None:
            media = probing.probe(source, ctx, encoder_settings=False)
        else:  # one ffprobe for the probe and the packets near the cut points
            media, listed = probing.probe_with_packets(source, guess, ctx)
            listed = listed if guess_fits(media) else None
    ranges = resolve_ranges(media, spec)
    if movie is not None:
        listed = movie.packets(packet_intervals(media, ranges))
    return SourceFacts(media, ranges, listed)


def _plan(
    read: SourceRead, spec: CutSpec, facts: SourceFacts, packets: list[Packet] | None,
    ctx: RunContext,
) -> CutPlan:  # fmt: skip
    if packets is None:
        intervals = packet_intervals(read.media, facts.ranges)
        packets = probing.read_packets(read.path, read.media, intervals, ctx)
    return make_plan(read, spec, facts.ranges, packets)


def _stage_falls_short(plan: CutPlan, ranges: list[FrameRange]) -> bool:
    """The stage began after the keyframe the first part needs (an MPEG-TS byte seek landed
    late), or on an open-GOP keyframe whose leading pictures reference frames it lacks."""
    first = min(r.start for r in ranges)
    return not any(k <= first for k in plan.keyframes) or any(
        leading_pictures(plan.media, plan.packets).values()
    )


def plan_cut(
    source: str | Path, spec: CutSpec, facts: SourceFacts, ctx: RunContext, *, staging: bool
) -> CutPlan:
    """The plan step: stage the span first when asked (packets are then listed from the local
    copy), plan every segment, and read the x264 settings when something is re-encoded."""
    original = SourceRead(source, facts.media, facts.media)
    read, packets = original, facts.packets
    if staging and (got := stage_span(source, facts.media, facts.ranges, ctx)) is not None:
        read, packets = SourceRead(got[0], got[1], facts.media), None
    plan = _plan(read, spec, facts, packets, ctx)
    if read is not original and _stage_falls_short(plan, facts.ranges):
        plan = _plan(original, spec, facts, None, ctx)  # read the source itself
    if plan.reencodes:
        # x264 writes its settings only into the source's first frame: read them there.
        x264 = probing.with_encoder_settings(source, facts.media, ctx).x264_options
        media = replace(plan.media, x264_options=x264)
        plan = replace(plan, read=replace(plan.read, media=media))
    return plan
