"""Pure planning: which frames are copied, which re-encoded, what fast mode delivers."""

from __future__ import annotations

from clipper.engine.plan.parts import (
    FrameRange,
    Part,
    Strategy,
    clean_copy_end,
    plan_exact,
    plan_fast,
)

# Keyframes every 30 frames in a 300-frame source.
KEYS = list(range(0, 300, 30))


def test_smart_cut_reencodes_only_the_partial_gops() -> None:
    plan = plan_exact(FrameRange(40, 200), KEYS, total_frames=300)
    assert plan.strategy is Strategy.SMART
    assert plan.parts == (Part("encode", 40, 60), Part("copy", 60, 180), Part("encode", 180, 200))
    assert (plan.frames_encoded, plan.frames_copied) == (40, 120)
    assert plan.delivered == plan.requested and plan.reason is None


def test_in_point_on_a_keyframe_needs_no_head() -> None:
    plan = plan_exact(FrameRange(60, 200), KEYS, total_frames=300)
    assert plan.parts == (Part("copy", 60, 180), Part("encode", 180, 200))


def test_keyframe_aligned_range_is_a_pure_copy() -> None:
    plan = plan_exact(FrameRange(30, 150), KEYS, total_frames=300)
    assert plan.strategy is Strategy.COPY
    assert plan.parts == (Part("copy", 30, 150),)


def test_range_to_the_end_copies_the_last_gop() -> None:
    plan = plan_exact(FrameRange(270, 300), KEYS, total_frames=300)
    assert plan.parts == (Part("copy", 270, 300),)
    whole = plan_exact(FrameRange(0, 300), KEYS, total_frames=300)
    assert whole.parts == (Part("copy", 0, 300),)


def test_range_inside_one_gop_is_reencoded_with_a_reason() -> None:
    plan = plan_exact(FrameRange(35, 55), KEYS, total_frames=300)
    assert plan.strategy is Strategy.REENCODE
    assert plan.parts == (Part("encode", 35, 55),)
    assert plan.reason and "GOP" in plan.reason


def test_short_gain_is_not_worth_a_smart_cut() -> None:
    # 89..121: [90, 120) is copyable, 30 of 32 frames -> smart.
    assert plan_exact(FrameRange(89, 121), KEYS, total_frames=300).strategy is Strategy.SMART
    # 31..89: the only keyframe inside is 60 and nothing after it up to 89 is whole.
    assert plan_exact(FrameRange(31, 89), KEYS, total_frames=300).strategy is Strategy.REENCODE
    # Sparse keyframes: only [95, 105) is copyable, 10 of 100 frames -> re-encode.
    sparse = [0, 95, 105, 300]
    plan = plan_exact(FrameRange(50, 150), sparse, total_frames=300)
    assert plan.strategy is Strategy.REENCODE
    assert plan.reason and "10 of 100" in plan.reason


def test_unsafe_source_falls_back_with_its_reason() -> None:
    plan = plan_exact(FrameRange(40, 200), KEYS, total_frames=300, unsafe_reason="open GOP")
    assert plan.strategy is Strategy.REENCODE and plan.reason == "open GOP"
    assert plan.parts == (Part("encode", 40, 200),)


def test_clean_copy_end_waits_for_reordered_b_frames() -> None:
    # Decode order of a GOP starting at 60 with B-frames: I60 P63 B61 B62 P66 B64 B65 ...
    order = [60, 63, 61, 62, 66, 64, 65, 69, 67, 68]
    assert clean_copy_end(order, 60, 61) == (61, 1)  # the keyframe alone is clean
    assert clean_copy_end(order, 60, 62) == (64, 4)  # 61 needs P63 first, then 62 completes it
    assert clean_copy_end(order, 60, 64) == (64, 4)
    assert clean_copy_end(order, 60, 65) == (67, 7)
    assert clean_copy_end(order, 60, 70) == (70, 10)
    assert clean_copy_end(order, 60, 71) is None  # not enough packets listed
    assert clean_copy_end(order, 60, 60) == (60, 0)


def test_clean_copy_end_with_leading_pictures() -> None:
    # Open GOP: CRA 60 is followed (decode order) by leading pictures 57..59 shown before it.
    order = [60, 58, 57, 59, 63, 61, 62]
    # As the clip's first keyframe, its leading pictures are counted but not delivered.
    assert clean_copy_end(order, 60, 62) == (64, 7)
    # Later in a clip, they are the frames just before the keyframe and belong to it.
    assert clean_copy_end(order, 60, 61, first=57) == (61, 4)


def test_fast_open_gop_drops_the_first_keyframes_leading_pictures() -> None:
    keys = [0, 30, 60, 90]
    lead = {30: 2, 60: 2, 90: 2}
    # Decode order from CRA 60: 60, its leading 58 59, then 63 61 62 ...
    order = [60, 58, 59, 63, 61, 62, 66, 64, 65]
    plan = plan_fast(
        FrameRange(40, 62), keys, total_frames=120, decode_order_at_end=order, leading=lead
    )
    assert plan.delivered == FrameRange(30, 64)
    first, rest = plan.parts
    # First GOP: CRA 30 and its frames up to 57 (58, 59 are CRA 60's leading pictures);
    # 30 + 2 - 2 packets from 30 to 60, minus the 2 dropped leading pictures of 30.
    assert first == Part("copy", 30, 58, packets=28, drop_leading=True)
    # Then CRA 60 with 58, 59 and the frames up to 63: 6 packets.
    assert rest == Part("copy", 58, 64, packets=6, lead_in=2)
    assert plan.frames_copied == 34


def test_fast_starts_at_the_keyframe_before_and_ends_clean() -> None:
    order = [180, 183, 181, 182, 186, 184, 185]
    plan = plan_fast(FrameRange(40, 182), KEYS, total_frames=300, decode_order_at_end=order)
    assert plan.strategy is Strategy.COPY
    assert plan.delivered == FrameRange(30, 184)
    assert plan.parts == (Part("copy", 30, 184, packets=150 + 4),)
    assert plan.reason and plan.frames_encoded == 0


def test_fast_without_packet_detail_extends_to_the_next_keyframe() -> None:
    plan = plan_fast(FrameRange(40, 182), KEYS, total_frames=300)
    assert plan.delivered == FrameRange(30, 210)


def test_fast_on_keyframes_delivers_exactly() -> None:
    plan = plan_fast(FrameRange(60, 300), KEYS, total_frames=300)
    assert plan.delivered == FrameRange(60, 300) and plan.reason is None
