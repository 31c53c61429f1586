"""Pure planning: frame ranges + keyframe positions → copied and re-encoded parts.

Frame indices count from the source's first frame; ranges are half-open [start, end).
"""

from __future__ import annotations

from collections.abc import Sequence
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


def clean_copy_end(decode_order: Sequence[int], key: int, need_end: int) -> int | None:
    """Smallest end ≥ need_end such that the first packets after `key` (decode order) are
    exactly the frames [key, end): a copy cut by packet count shows no gaps.

    `decode_order` lists the frame indices of the packets from `key` on, in decode order.
    With B-frames, a P frame is stored before the B frames shown ahead of it, so cutting
    right after the wanted frame count would keep the P frame and drop a B frame.
    """
    if need_end <= key:
        return key
    seen: set[int] = set()
    for n, index in enumerate(decode_order, start=1):
        seen.add(index)
        if key + n >= need_end and seen == set(range(key, key + n)):
            return key + n
    return None


def plan_fast(
    rng: FrameRange,
    keyframes: Sequence[int],
    *,
    total_frames: int,
    decode_order_at_end: Sequence[int] = (),
) -> SegmentPlan:
    """Stream copy from the keyframe at or before the in-point; the out-point is extended to
    the first clean packet boundary at or after the requested end."""
    start_key = max((k for k in keyframes if k <= rng.start), default=0)
    end = rng.end
    if end < total_frames:
        end_key = max((k for k in keyframes if k <= rng.end), default=start_key)
        end_key = max(end_key, start_key)
        clean = clean_copy_end(decode_order_at_end, end_key, rng.end)
        if clean is None:
            # Not enough packets listed: extend to the next keyframe (or the stream's end).
            clean = next((k for k in sorted(keyframes) if k >= rng.end), total_frames)
        end = min(clean, total_frames)
    delivered = FrameRange(start_key, end)
    reason = None
    if delivered != rng:
        reason = "fast mode copies whole packets from the keyframe at or before the in-point"
    return SegmentPlan(rng, delivered, Strategy.COPY, (Part("copy", start_key, end),), reason)
