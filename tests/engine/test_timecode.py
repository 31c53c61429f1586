"""Unit tests for clipper.timecode: exact rates, SMPTE labels, the frame selection rule."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import pytest

from clipper.errors import BadRequest
from clipper.spec import TimecodeOrigin
from clipper.timecode import (
    describe_frame,
    frame_to_seconds,
    frames_to_timecode,
    nominal_fps,
    parse_clock,
    parse_frame_rate,
    supports_drop_frame,
    time_to_frame,
    timecode_to_frames,
)

NTSC30 = Fraction(30000, 1001)
NTSC60 = Fraction(60000, 1001)
NTSC24 = Fraction(24000, 1001)
PAL = Fraction(25)
EMBEDDED = TimecodeOrigin.EMBEDDED
ZERO = TimecodeOrigin.ZERO


def next_label(tc: str, fps: int, drop: int) -> str:
    """Naive label increment, written independently of the module: count, then skip drops."""
    hh, mm, ss, ff = int(tc[0:2]), int(tc[3:5]), int(tc[6:8]), int(tc[9:])
    ff += 1
    if ff == fps:
        ff, ss = 0, ss + 1
    if ss == 60:
        ss, mm = 0, mm + 1
    if mm == 60:
        mm, hh = 0, hh + 1
    if drop and ss == 0 and ff < drop and mm % 10 != 0:
        ff = drop
    sep = ";" if drop else ":"
    return f"{hh:02d}:{mm:02d}:{ss:02d}{sep}{ff:02d}"


def enumerate_labels(count: int, fps: int, drop: int) -> Iterator[str]:
    """The first `count` labels in order, by repeated naive increments."""
    sep = ";" if drop else ":"
    label = f"00:00:00{sep}00"
    for _ in range(count):
        yield label
        label = next_label(label, fps, drop)


def t2f(value: float | int | str, rate: Fraction, **kw: object) -> int:
    """time_to_frame with the defaults of a source without a start timecode."""
    args: dict[str, object] = {"start_timecode": None, "origin": EMBEDDED, "field": "start"}
    args.update(kw)
    return time_to_frame(value, rate, **args)  # type: ignore[arg-type]


# --- frame rates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30000/1001", NTSC30),
        ("25/1", PAL),
        ("25", PAL),
        (25, PAL),
        ("29.97", NTSC30),
        ("23.976", NTSC24),
        ("23.98", NTSC24),
        ("59.94", NTSC60),
        ("24000/1001", NTSC24),
        ("12.5", Fraction(25, 2)),
        ("30", Fraction(30)),
        (Fraction(50), Fraction(50)),
    ],
)
def test_parse_frame_rate(text: str | int | Fraction, expected: Fraction) -> None:
    assert parse_frame_rate(text) == expected


@pytest.mark.parametrize("bad", ["0", "0/0", "25/0", "-25", "abc", "", "30000/1001/2", 0])
def test_parse_frame_rate_rejects(bad: str | int) -> None:
    with pytest.raises(BadRequest) as info:
        parse_frame_rate(bad)
    assert info.value.field == "frame_rate"


@pytest.mark.parametrize(
    ("rate", "fps", "df"),
    [(NTSC30, 30, True), (NTSC24, 24, False), (PAL, 25, False), (NTSC60, 60, True)],
)
def test_nominal_fps_and_drop_frame_support(rate: Fraction, fps: int, df: bool) -> None:
    assert nominal_fps(rate) == fps
    assert supports_drop_frame(rate) is df


# --- SMPTE labels ----------------------------------------------------------------------------


def test_known_drop_frame_anchors() -> None:
    # Published values: one hour of 29.97 DF is 107892 frames, ten minutes 17982.
    assert timecode_to_frames("01:00:00;00", NTSC30) == 107892
    assert timecode_to_frames("00:10:00;00", NTSC30) == 17982
    assert timecode_to_frames("01:00:00;00", NTSC60) == 215784
    assert frames_to_timecode(107892, NTSC30, drop_frame=True) == "01:00:00;00"
    assert frames_to_timecode(17982, NTSC30, drop_frame=True) == "00:10:00;00"
    assert frames_to_timecode(215784, NTSC60, drop_frame=True) == "01:00:00;00"


def test_drop_frame_minute_boundary_is_consecutive() -> None:
    before = timecode_to_frames("00:00:59;29", NTSC30)
    after = timecode_to_frames("00:01:00;02", NTSC30)
    assert after == before + 1 == 1800
    assert frames_to_timecode(1799, NTSC30, drop_frame=True) == "00:00:59;29"
    assert frames_to_timecode(1800, NTSC30, drop_frame=True) == "00:01:00;02"


def test_ten_minute_mark_keeps_its_labels() -> None:
    assert timecode_to_frames("00:10:00;00", NTSC30) + 1 == timecode_to_frames(
        "00:10:00;01", NTSC30
    )
    assert timecode_to_frames("00:09:59;29", NTSC30) + 1 == timecode_to_frames(
        "00:10:00;00", NTSC30
    )
    assert frames_to_timecode(17983, NTSC30, drop_frame=True) == "00:10:00;01"


@pytest.mark.parametrize("label", ["00:01:00;00", "00:01:00;01", "01:59:00;01", "00:11:00;00"])
def test_skipped_drop_frame_labels_rejected_at_2997(label: str) -> None:
    with pytest.raises(BadRequest, match="skipped at minutes not divisible by 10") as info:
        timecode_to_frames(label, NTSC30, field="segments[0].start")
    assert info.value.field == "segments[0].start"


@pytest.mark.parametrize("ff", ["00", "01", "02", "03"])
def test_skipped_drop_frame_labels_rejected_at_5994(ff: str) -> None:
    with pytest.raises(BadRequest, match="skipped"):
        timecode_to_frames(f"00:01:00;{ff}", NTSC60)
    assert (
        timecode_to_frames("00:01:00;04", NTSC60) == timecode_to_frames("00:00:59;59", NTSC60) + 1
    )


def test_5994_drops_four_labels_per_minute() -> None:
    assert timecode_to_frames("00:01:00;04", NTSC60) == 60 * 60
    labels = list(enumerate_labels(60 * 60 * 3, 60, 4))
    assert [timecode_to_frames(tc, NTSC60) for tc in labels] == list(range(len(labels)))


@pytest.mark.parametrize(
    ("rate", "fps", "drop", "count"),
    [(NTSC30, 30, 2, 30 * 60 * 21), (NTSC60, 60, 4, 60 * 60 * 11), (PAL, 25, 0, 25 * 60 * 3)],
)
def test_every_label_of_the_first_minutes_matches_naive_counting(
    rate: Fraction, fps: int, drop: int, count: int
) -> None:
    for index, label in enumerate(enumerate_labels(count, fps, drop)):
        assert frames_to_timecode(index, rate, drop_frame=bool(drop)) == label
        assert timecode_to_frames(label, rate) == index


@pytest.mark.parametrize(
    ("rate", "drop_frame", "drop"),
    [(NTSC30, True, 2), (NTSC30, False, 0), (NTSC60, True, 4), (NTSC24, False, 0), (PAL, False, 0)],
)
def test_round_trip_sampled_over_24_hours(rate: Fraction, drop_frame: bool, drop: int) -> None:
    fps = nominal_fps(rate)
    day = timecode_to_frames("23:59:59" + (";" if drop_frame else ":") + f"{fps - 1}", rate) + 1
    # A prime stride lands on every label position over the day, including minute edges.
    for n in range(0, day - 1, 997):
        label = frames_to_timecode(n, rate, drop_frame=drop_frame)
        assert timecode_to_frames(label, rate) == n
        assert frames_to_timecode(n + 1, rate, drop_frame=drop_frame) == next_label(
            label, fps, drop
        )
    last = frames_to_timecode(day - 1, rate, drop_frame=drop_frame)
    assert last.startswith("23:59:59")


def test_2398_is_non_drop_only() -> None:
    assert timecode_to_frames("00:00:01:00", NTSC24) == 24
    assert timecode_to_frames("01:00:00:00", NTSC24) == 86400
    with pytest.raises(BadRequest, match="drop-frame exists only"):
        timecode_to_frames("00:00:01;00", NTSC24)
    with pytest.raises(BadRequest, match="too large"):
        timecode_to_frames("00:00:00:24", NTSC24)


def test_25_fps_labels() -> None:
    assert timecode_to_frames("10:00:00:00", PAL) == 10 * 3600 * 25
    assert timecode_to_frames("00:00:01:24", PAL) == 49
    assert frames_to_timecode(49, PAL, drop_frame=False) == "00:00:01:24"
    with pytest.raises(BadRequest, match="too large"):
        timecode_to_frames("00:00:00:25", PAL)
    with pytest.raises(BadRequest, match="drop-frame"):
        timecode_to_frames("00:00:00;05", PAL)


@pytest.mark.parametrize("bad", ["00:60:00:00", "00:00:60:00", "00:00:00:30", "1:2:3:4", "x"])
def test_malformed_labels_rejected(bad: str) -> None:
    with pytest.raises(BadRequest):
        timecode_to_frames(bad, NTSC30)


def test_frames_to_timecode_refuses_impossible_requests() -> None:
    with pytest.raises(ValueError):
        frames_to_timecode(-1, PAL, drop_frame=False)
    with pytest.raises(ValueError):
        frames_to_timecode(10, PAL, drop_frame=True)


# --- times to frame indices ------------------------------------------------------------------


def test_product_example_at_2997() -> None:
    # PRODUCT.md: start 12.345 -> frame 370 (12.3457 s); end 21.5 -> last frame 644: 275 frames.
    start = t2f(12.345, NTSC30)
    end = t2f(21.5, NTSC30, field="end")
    assert start == 370
    assert end == 645
    assert end - start == 275
    # The rule itself, checked with exact arithmetic instead of the module's ceil.
    assert Fraction(369 * 1001, 30000) < Fraction("12.345") <= Fraction(370 * 1001, 30000)
    assert Fraction(644 * 1001, 30000) < Fraction("21.5") <= Fraction(645 * 1001, 30000)


def test_float_inputs_use_their_decimal_value() -> None:
    # 65.2 * 25 = 1630 exactly; a binary float product would be 1630.0000000000002 -> 1631.
    assert t2f(65.2, PAL) == 1630
    assert t2f("65.2", PAL) == 1630
    assert t2f(0.1, Fraction(10)) == 1
    assert t2f(0, NTSC30) == 0
    assert t2f(10, PAL) == 250
    # A time exactly on a frame's timestamp selects that frame; a hair later the next one.
    assert t2f("0.1001", NTSC30) == 3
    assert t2f("0.10011", NTSC30) == 4


def test_clock_form() -> None:
    assert parse_clock("00:01:05.200", field="start") == Fraction(652, 10)
    assert parse_clock("01:05.2", field="start") == Fraction(652, 10)
    assert parse_clock("1:00:00", field="start") == 3600
    assert t2f("00:01:05.200", PAL) == 1630
    assert t2f("00:00:12.345", NTSC30) == 370
    for bad in ("00:61:00", "00:00:61.0", "1:2:3:4:5", "12.345.6", "aa:bb"):
        with pytest.raises(BadRequest):
            parse_clock(bad, field="start")


def test_smpte_zero_origin_names_the_frame() -> None:
    assert t2f("00:00:12:10", NTSC30, origin=ZERO) == 370
    assert t2f("00:01:00;02", NTSC30, origin=ZERO) == 1800
    assert t2f("00:00:01:00", PAL, start_timecode="10:00:00:00", origin=ZERO) == 25


def test_embedded_origin_at_25_fps() -> None:
    kw = {"start_timecode": "10:00:00:00", "origin": EMBEDDED}
    assert t2f("10:00:00:00", PAL, **kw) == 0
    assert t2f("10:00:01:05", PAL, **kw) == 30
    assert t2f("10:01:00:00", PAL, **kw) == 1500
    with pytest.raises(BadRequest, match="before the source's start timecode") as info:
        t2f("09:59:59:24", PAL, field="segments[1].end", **kw)
    assert info.value.field == "segments[1].end"
    # Seconds stay relative to the first frame whatever the start timecode.
    assert t2f(2, PAL, **kw) == 50


def test_embedded_drop_frame_start() -> None:
    kw = {"start_timecode": "01:00:00;00", "origin": EMBEDDED}
    assert t2f("01:00:00;00", NTSC30, **kw) == 0
    assert t2f("01:01:00;02", NTSC30, **kw) == 1800
    assert t2f("01:10:00;00", NTSC30, **kw) == 17982


@pytest.mark.parametrize("bad", [-1, -0.5, "-3", "abc", "1e", float("nan"), float("inf"), True])
def test_bad_times_rejected_with_field(bad: float | int | str) -> None:
    with pytest.raises(BadRequest) as info:
        t2f(bad, PAL, field="end")
    assert info.value.field == "end"


def test_invalid_drop_frame_label_as_time_value() -> None:
    with pytest.raises(BadRequest, match="labels ;00 and ;01 are skipped"):
        t2f("00:01:00;00", NTSC30, origin=ZERO)


# --- back to seconds and labels ------------------------------------------------------------


def test_frame_to_seconds_is_exact() -> None:
    assert frame_to_seconds(370, NTSC30) == Fraction(370 * 1001, 30000)
    assert frame_to_seconds(25, PAL) == 1


def test_describe_frame() -> None:
    assert describe_frame(370, NTSC30, start_timecode=None) == {
        "frame": 370,
        "seconds": 12.345667,
        "timecode": "00:00:12:10",
    }
    assert describe_frame(1800, NTSC30, start_timecode="00:00:00;00")["timecode"] == "00:01:00;02"
    assert describe_frame(30, PAL, start_timecode="10:00:00:00")["timecode"] == "10:00:01:05"
    assert describe_frame(0, NTSC30, start_timecode="01:00:00;00")["timecode"] == "01:00:00;00"
