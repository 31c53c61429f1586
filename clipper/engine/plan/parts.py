"""Pure planning: frame ranges + keyframe positions → copied and re-encoded parts.

Frame indices count from the source's first frame; ranges are half-open [start, end).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

#: A smart cut is used only when at least this share of the range can be stream-copied;
#: below it, three FFmpeg processes cost more than one re-encode of the whole range.
MIN_COPY_FRACTION = 0.4


class Strategy(StrEnum):
    """How a segment's video was produced."""

    COPY = "copy"  # stream copy only (fast mode, or a keyframe-aligned exact range)
    SMART = "smart"  # re-encoded head/tail, stream-copied middle
    REENCODE = "reencode"  # the whole range re-encoded


@dataclass(frozen=True)
class FrameRange:
    """Frames [start, end) of the source."""

    start: int
    end: int

    @property
    def count(self) -> int:
        """Number of frames in the range."""
        return self.end - self.start


@dataclass(frozen=True)
class Part:
    """A piece of video output: source frames [start, end), copied or re-encoded."""

    mode: Literal["copy", "encode"]
    start: int
    end: int
    #: Packets a copy takes (decode order, after dropped leading pictures); None = `count`.
    packets: int | None = None
    #: Drop the first keyframe's leading pictures (open GOP: they reference frames before it).
    drop_leading: bool = False
    #: Frames shown before the part's first packet (the leading pictures of the keyframe it
    #: starts with, kept because the part before it holds what they reference).
    lead_in: int = 0

    @property
    def count(self) -> int:
        """Number of frames in the part."""
        return self.end - self.start


@dataclass(frozen=True)
class SegmentPlan:
    """How one requested range is produced, and which frames it really delivers."""

    requested: FrameRange
    delivered: FrameRange
    strategy: Strategy
    parts: tuple[Part, ...]
    reason: str | None = None

    @property
    def frames_copied(self) -> int:
        """Frames taken bit-for-bit from the source."""
        return sum(p.count for p in self.parts if p.mode == "copy")

    @property
    def frames_encoded(self) -> int:
        """Frames decoded and re-encoded."""
        return sum(p.count for p in self.parts if p.mode == "encode")


def plan_reencode(rng: FrameRange, reason: str | None) -> SegmentPlan:
    """Re-encode the whole range (frame-exact)."""
    return SegmentPlan(rng, rng, Strategy.REENCODE, (Part("encode", rng.start, rng.end),), reason)


def plan_exact(
    rng: FrameRange,
    keyframes: Sequence[int],
    *,
    total_frames: int,
    unsafe_reason: str | None = None,
) -> SegmentPlan:
    """Smart cut where it pays and is safe, else a full re-encode with the reason."""
    if unsafe_reason:
        return plan_reencode(rng, unsafe_reason)
    # The end of the stream is as good a boundary as a keyframe for the copied middle.
    bounds = sorted({k for k in keyframes if 0 <= k <= total_frames} | {total_frames})
    k_in = next((k for k in bounds if k >= rng.start), None)
    k_out = max((k for k in bounds if k <= rng.end), default=None)
    if k_in is None or k_out is None or k_in >= k_out:
        return plan_reencode(rng, "the range holds no whole GOP to copy")
    copied = k_out - k_in
    if copied < MIN_COPY_FRACTION * rng.count:
        return plan_reencode(
            rng, f"only {copied} of {rng.count} frames could be copied: re-encoding is cheaper"
        )
    parts: list[Part] = []
    if rng.start < k_in:
        parts.append(Part("encode", rng.start, k_in))
    parts.append(Part("copy", k_in, k_out))
    if k_out < rng.end:
        parts.append(Part("encode", k_out, rng.end))
    strategy = Strategy.COPY if len(parts) == 1 else Strategy.SMART
    return SegmentPlan(rng, rng, strategy, tuple(parts))


def clean_copy_end(
    decode_order: Sequence[int], key: int, need_end: int, *, first: int | None = None
) -> tuple[int, int] | None:
    """(end, packets): the fewest packets from `key` on (decode order) that hold exactly the
    frames [first, end) with end ≥ need_end, so a copy cut by packet count shows no gaps.

    `decode_order` lists the frame indices of the packets from `key` on, in decode order.
    With B-frames, a P frame is stored before the B frames shown ahead of it, so cutting
    right after the wanted frame count would keep the P frame and drop a B frame.
    `first` is where the frames must begin: `key` itself, or earlier when the keyframe's
    leading pictures (open GOP) belong to the clip. Packets showing frames before `first`
    (the undecodable leading pictures of a clip's first keyframe) are counted, not wanted.
    """
    lo = key if first is None else first
    if need_end <= lo:
        return lo, 0
    seen: set[int] = set()
    for n, index in enumerate(decode_order, start=1):
        if index >= lo:
            seen.add(index)
        end = lo + len(seen)
        if end >= need_end and seen == set(range(lo, end)):
            return end, n
    return None


def _packets_between(a: int, b: int, leading: Mapping[int, int]) -> int:
    """Packets from keyframe a up to keyframe b (decode order): b's leading pictures come
    after b, a's come after a."""
    if b <= a:
        return 0
    return (b - a) + leading.get(a, 0) - leading.get(b, 0)


def plan_fast(
    rng: FrameRange,
    keyframes: Sequence[int],
    *,
    total_frames: int,
    decode_order_at_end: Sequence[int] = (),
    leading: Mapping[int, int] | None = None,
) -> SegmentPlan:
    """Stream copy from the keyframe at or before the in-point; the out-point is extended to
    the first clean packet boundary at or after the requested end.

    `leading` gives, per keyframe, how many leading pictures follow it (open GOP). The copy
    drops the first keyframe's leading pictures (they reference frames before the clip), so
    its first GOP becomes a part of its own; later keyframes keep theirs.
    """
    lead = leading or {}
    keys = sorted(keyframes)
    start_key = max((k for k in keys if k <= rng.start), default=0)
    end, tail_packets = total_frames, None
    end_key = start_key
    if rng.end < total_frames:
        end_key = max(start_key, max((k for k in keys if k <= rng.end), default=start_key))
        first = end_key if end_key == start_key else end_key - lead.get(end_key, 0)
        clean = clean_copy_end(decode_order_at_end, end_key, rng.end, first=first)
        if clean is None:
            # Not enough packets listed: extend to the next keyframe (or the stream's end).
            end_key = next((k for k in keys if k >= rng.end), total_frames)
            clean = (end_key - lead.get(end_key, 0), 0) if end_key < total_frames else None
        if clean is not None:
            end, tail_packets = min(clean[0], total_frames), clean[1]
    delivered = FrameRange(start_key, end)
    reason = None
    if delivered != rng:
        reason = "fast mode copies whole packets from the keyframe at or before the in-point"
    parts = _fast_parts(start_key, end, end_key, tail_packets, keys, lead)
    return SegmentPlan(rng, delivered, Strategy.COPY, parts, reason)


def _fast_parts(
    start: int,
    end: int,
    end_key: int,
    tail_packets: int | None,
    keys: list[int],
    lead: Mapping[int, int],
) -> tuple[Part, ...]:
    total = None if tail_packets is None else _packets_between(start, end_key, lead) + tail_packets
    if not lead.get(start):
        return (Part("copy", start, end, total),)
    # Open GOP: the first GOP alone, its leading pictures dropped, up to the next keyframe.
    second = next((k for k in keys if start < k < end), None)
    if second is None:
        packets = None if total is None else total - lead[start]
        return (Part("copy", start, end, packets, drop_leading=True),)
    head_packets = _packets_between(start, second, lead)
    first_gop = Part("copy", start, second - lead.get(second, 0), head_packets - lead[start], True)
    rest = None if total is None else total - head_packets
    lead_in = lead.get(second, 0)
    return first_gop, Part("copy", second - lead_in, end, rest, lead_in=lead_in)
