"""The accuracy report: what was asked, what was delivered, how, and the proof."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from clipper.engine.plan.parts import SegmentPlan, Strategy
from clipper.timecode import describe_frame

if TYPE_CHECKING:
    from clipper.engine.plan.cutplan import CutPlan


class FramePoint(BaseModel):
    """A frame of the source in three forms."""

    frame: int = Field(description="index from the source's first frame (0-based)")
    seconds: float = Field(description="presentation time from the source's first frame")
    timecode: str = Field(description="SMPTE label (from the source's start timecode if any)")


class Verification(BaseModel):
    """What decoding the finished output showed."""

    frame_count: int
    expected_frame_count: int
    duration_seconds: float
    first_frame_seconds: float
    last_frame_seconds: float
    decode_errors: int = Field(description="error lines from decoding (must be 0)")
    frames_decoded: int = Field(
        description="frames decoded in the check: all of them, or the re-encoded parts and "
        "the first GOP of each copied part"
    )
    audio_duration_seconds: float | None = None
    audio_video_delta_seconds: float | None = Field(
        default=None, description="audio end minus video end"
    )
    compared: list[str] = Field(
        default_factory=list,
        description="what was compared with the plan: packets, streams and their fields, "
        "decoded frames",
    )
    passed: bool


class SegmentReport(BaseModel):
    """One requested range."""

    requested_in: FramePoint
    requested_out: FramePoint = Field(description="exclusive: the first frame NOT wanted")
    delivered_first: FramePoint
    delivered_last: FramePoint = Field(description="inclusive: the last frame delivered")
    frame_count: int
    snapped: bool
    snap_in_ms: float = Field(description="delivered first minus requested in, milliseconds")
    snap_out_ms: float = Field(description="delivered end minus requested out, milliseconds")
    strategy: Strategy
    fallback_reason: str | None = None
    frames_reencoded: int
    frames_copied: int


class DroppedStreamReport(BaseModel):
    """A source stream the clip does not carry."""

    index: int = Field(description="the stream's index in the source")
    kind: str = Field(description="video, subtitle, data or attachment")
    codec: str
    reason: str


class AccuracyReport(BaseModel):
    """Per segment and overall; `model_dump(mode="json")` is the API's `result.accuracy`."""

    accuracy: str
    preset: str
    strategy: Strategy
    frame_count: int
    duration_seconds: float
    frame_rate: str
    source_start_timecode: str | None
    segments: list[SegmentReport]
    frames_reencoded: int
    frames_copied: int
    verification: Verification
    not_kept: list[str] = Field(
        default_factory=list,
        description="what the source has that this output does not carry, and why",
    )
    dropped_streams: list[DroppedStreamReport] = Field(
        default_factory=list,
        description="source streams the clip does not hold, each with the reason; every "
        "stream of the source is either in the clip or listed here",
    )
    selection_rule: str = (
        "seconds select the first frame at or after them; end is exclusive; "
        "SMPTE labels name frames directly"
    )


def _point(index: int, rate: Fraction, start_timecode: str | None) -> FramePoint:
    d = describe_frame(index, rate, start_timecode=start_timecode)
    return FramePoint(
        frame=int(str(d["frame"])), seconds=float(str(d["seconds"])), timecode=str(d["timecode"])
    )


def segment_report(plan: SegmentPlan, rate: Fraction, start_timecode: str | None) -> SegmentReport:
    """The report entry for one planned and delivered segment."""
    req, got = plan.requested, plan.delivered
    frame_ms = 1000 / float(rate)
    return SegmentReport(
        requested_in=_point(req.start, rate, start_timecode),
        requested_out=_point(req.end, rate, start_timecode),
        delivered_first=_point(got.start, rate, start_timecode),
        delivered_last=_point(got.end - 1, rate, start_timecode),
        frame_count=got.count,
        snapped=got != req,
        snap_in_ms=round((got.start - req.start) * frame_ms, 3),
        snap_out_ms=round((got.end - req.end) * frame_ms, 3),
        strategy=plan.strategy,
        fallback_reason=plan.reason,
        frames_reencoded=plan.frames_encoded,
        frames_copied=plan.frames_copied,
    )


def overall_strategy(plans: list[SegmentPlan]) -> Strategy:
    """One word for the whole clip: copy if nothing was encoded, reencode if nothing copied."""
    strategies = {p.strategy for p in plans}
    if strategies == {Strategy.COPY}:
        return Strategy.COPY
    if strategies == {Strategy.REENCODE}:
        return Strategy.REENCODE
    return Strategy.SMART


def build_report(plan: CutPlan, verification: Verification) -> AccuracyReport:
    """The report step: what `plan` asked and delivered, with the verification's proof."""
    media = plan.media
    segments = [segment_report(p, media.frame_rate, media.start_timecode) for p in plan.segments]
    return AccuracyReport(
        accuracy=plan.spec.accuracy.value,
        preset=plan.spec.preset.value,
        strategy=overall_strategy(plan.segments),
        frame_count=verification.frame_count,
        duration_seconds=verification.duration_seconds,
        frame_rate=f"{media.frame_rate.numerator}/{media.frame_rate.denominator}",
        source_start_timecode=media.start_timecode,
        segments=segments,
        frames_reencoded=sum(s.frames_reencoded for s in segments),
        frames_copied=sum(s.frames_copied for s in segments),
        verification=verification,
        not_kept=list(plan.layout.not_kept),
        dropped_streams=[
            DroppedStreamReport(index=d.index, kind=d.kind, codec=d.codec, reason=d.reason)
            for d in plan.layout.dropped
        ],
    )
