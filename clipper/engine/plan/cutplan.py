"""The cut plan: the one description of what a cut's output will be and how it is made.

Everything after planning reads this object: the FFmpeg stage builds its command lines from
it, verification compares the written file with it, and the report describes it. What the
output will hold (its stream layout) belongs here too, so each later stage has one place to
look.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from clipper.engine.ffmpeg.encoders import output_extension
from clipper.engine.media.model import Chapter, MediaInfo, Packet
from clipper.engine.plan.cutpoints import decode_intervals, direct_copy_seconds, plan_segments
from clipper.engine.plan.layout import OutputLayout, plan_layout
from clipper.engine.plan.parts import FrameRange, SegmentPlan
from clipper.spec import Accuracy, CutSpec, Preset
from clipper.timecode import describe_frame

#: NAL unit types the MPEG-TS muxer adds in-band: parameter sets and access unit delimiters.
TS_ADDED_UNITS = {"h264": "7|8|9", "hevc": "32|33|34|35"}


@dataclass(frozen=True)
class SourceRead:
    """What FFmpeg reads for a cut: the source, or a staged local copy of its span (then
    `original` is the source's own MediaInfo, which decides the output container)."""

    path: str | Path
    media: MediaInfo
    original: MediaInfo


@dataclass(frozen=True)
class CutPlan:
    """A planned cut: input, output container, segments with their parts, and the facts they
    were planned from (keyframes and packets near the cut points)."""

    read: SourceRead
    spec: CutSpec
    extension: str
    segments: list[SegmentPlan]
    keyframes: list[int]
    packets: list[Packet]
    #: The delivered first frame's timecode, written into MP4/MOV outputs.
    start_timecode: str | None
    #: One-process fast copy: the video input's `-t` (None = to the end), or not possible.
    direct_copy: DirectCopy | None
    #: The streams the output holds, in order, and their shape.
    layout: OutputLayout

    @property
    def source(self) -> str | Path:
        """What FFmpeg reads."""
        return self.read.path

    @property
    def media(self) -> MediaInfo:
        """What FFmpeg reads, probed."""
        return self.read.media

    @property
    def frame_rate(self) -> Fraction:
        """The video's frame rate."""
        return self.read.media.frame_rate

    @property
    def expected_frames(self) -> int:
        """Video frames the output must hold."""
        return sum(p.delivered.count for p in self.segments)

    @property
    def clip_seconds(self) -> float:
        """The clip's length."""
        return self.expected_frames / float(self.frame_rate)

    @property
    def copies_only(self) -> bool:
        """`fast` + `original`: nothing may be re-encoded, audio included."""
        return self.spec.accuracy is Accuracy.FAST and self.spec.preset is Preset.ORIGINAL

    @property
    def strip_units(self) -> str | None:
        """NAL types to strip when a staged MPEG-TS copy stands in for an MP4/MOV/MKV source."""
        source_container = self.read.original.container
        if self.media.container != "mpegts" or source_container not in ("mov", "matroska"):
            return None
        return TS_ADDED_UNITS.get(self.media.video.codec)

    @property
    def decode_intervals(self) -> list[tuple[float, float]] | None:
        """Output intervals verification decodes (None: all of it)."""
        if self.extension == ".ts":
            # MPEG-TS seeks land mid-GOP (decode errors that are not in the file): decode all.
            return None
        return decode_intervals(self.segments, self.frame_rate)

    @property
    def reencodes(self) -> bool:
        """Whether any part is re-encoded."""
        return any(p.mode == "encode" for plan in self.segments for p in plan.parts)


@dataclass(frozen=True)
class DirectCopy:
    """A `fast` cut done by one FFmpeg process; `video_seconds` is its video `-t`."""

    video_seconds: float | None


def clip_chapters(media: MediaInfo, segments: list[SegmentPlan]) -> tuple[Chapter, ...]:
    """The source's chapters inside the delivered segments, re-timed to the clip (pure).

    A chapter that a segment cuts into starts at that segment's start; one that spans a
    seam is split there (each piece keeps the title), so every clip chapter lies in one
    segment.
    """
    chapters: list[Chapter] = []
    offset = Fraction(0)
    for segment in segments:
        begin = media.frame_pts(segment.delivered.start)
        end = media.frame_pts(segment.delivered.end)
        for c in media.chapters:
            start = max(Fraction(c.start_seconds), begin)
            stop = min(Fraction(c.end_seconds), end)
            if stop > start:
                chapters.append(
                    Chapter(float(start - begin + offset), float(stop - begin + offset), c.title)
                )
        offset += Fraction(segment.delivered.count) / media.frame_rate
    return tuple(chapters)


def make_plan(
    read: SourceRead, spec: CutSpec, ranges: list[FrameRange], packets: list[Packet]
) -> CutPlan:
    """Plan `ranges` of `read` from the packets near the cut points (pure)."""
    media = read.media
    segments, keyframes = plan_segments(media, spec, ranges, packets)
    timecode = None
    if media.start_timecode:
        first = describe_frame(
            segments[0].delivered.start, media.frame_rate, start_timecode=media.start_timecode
        )
        timecode = str(first["timecode"])
    direct = None
    copies_only = spec.accuracy is Accuracy.FAST and spec.preset is Preset.ORIGINAL
    if copies_only and len(segments) == 1:
        possible, video_seconds = direct_copy_seconds(media, segments[0], packets)
        direct = DirectCopy(video_seconds) if possible else None
    extension = output_extension(read.original, spec.preset)
    layout = plan_layout(
        read.original,
        spec.preset,
        extension,
        copies_audio=copies_only and len(segments) == 1,
        frames=sum(s.delivered.count for s in segments),
    )
    layout = replace(layout, chapters=clip_chapters(read.original, segments))
    return CutPlan(
        read=read,
        spec=spec,
        extension=extension,
        segments=segments,
        keyframes=keyframes,
        packets=packets,
        start_timecode=timecode,
        direct_copy=direct,
        layout=layout,
    )
