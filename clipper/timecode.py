"""Time and SMPTE timecode arithmetic: pure functions on exact rationals.

Frame rates and times are `fractions.Fraction`, never floats: 30000/1001 fps is not 29.97,
and a float error of one microsecond is enough to select the wrong frame.

The selection rule (PRODUCT.md, "Which frames a range selects"): a time in seconds selects
the first frame whose presentation timestamp is at or after it, so index = ceil(t * rate).
The same rule turns an exclusive out-point into the exclusive end index. SMPTE labels name
a frame directly.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from clipper.errors import BadRequest
from clipper.spec import TimecodeOrigin

#: NTSC-family rates, keyed by the decimal spellings people and tools use for them.
_NTSC_BASES = (24, 30, 48, 60, 120)
#: How far a decimal rate may be from n*1000/1001 and still be snapped to it.
_NTSC_SNAP_TOLERANCE = Fraction(1, 100)
#: The only rates at which drop-frame timecode is defined (SMPTE ST 12-1).
_DROP_FRAME_RATES = frozenset({Fraction(30000, 1001), Fraction(60000, 1001)})

_RATIO_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_DECIMAL_RE = re.compile(r"^\s*\d+(\.\d+)?\s*$")
# ':' before the frames means non-drop; ';' (and the '.'/',' some tools print) means drop.
_TIMECODE_RE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$")
# Only ';' marks drop-frame in a user's time value: "HH:MM:SS.mmm" there is a clock time.
_SMPTE_VALUE_RE = re.compile(r"^\d{1,2}:\d{2}:\d{2}[:;]\d{2,3}$")
_CLOCK_RE = re.compile(r"^(?:(\d+):)?(\d+):(\d{1,2}(?:\.\d+)?)$")
_SECONDS_RE = re.compile(r"^\+?(\d+(\.\d*)?|\.\d+)$")


def parse_frame_rate(value: str | int | Fraction, *, field: str = "frame_rate") -> Fraction:
    """Parse "30000/1001", "25/1", "25" or "29.97" into an exact rate (NTSC decimals snapped)."""
    rate: Fraction
    if isinstance(value, bool):
        raise BadRequest(f"{value!r} is not a frame rate", field=field)
    if isinstance(value, Fraction | int):
        rate = Fraction(value)
    elif isinstance(value, float):
        rate = _snap_ntsc(Fraction(repr(value))) if math.isfinite(value) else Fraction(0)
    elif isinstance(value, str) and (m := _RATIO_RE.match(value)):
        num, den = int(m.group(1)), int(m.group(2))
        if den == 0:
            raise BadRequest(f"{value!r} is not a frame rate (zero denominator)", field=field)
        rate = Fraction(num, den)
    elif isinstance(value, str) and _DECIMAL_RE.match(value):
        rate = _snap_ntsc(Fraction(value.strip()))
    else:
        raise BadRequest(
            f"{value!r} is not a frame rate: use a ratio like 30000/1001 or a number like 25",
            field=field,
        )
    if rate <= 0:
        raise BadRequest(f"{value!r} is not a frame rate: it must be above zero", field=field)
    return rate


def _snap_ntsc(rate: Fraction) -> Fraction:
    """Map 23.976, 29.97, 59.94 (and 23.98, 47.952, 119.88) onto n*1000/1001."""
    for base in _NTSC_BASES:
        ntsc = Fraction(base * 1000, 1001)
        if rate != base and abs(rate - ntsc) < _NTSC_SNAP_TOLERANCE:
            return ntsc
    return rate


def nominal_fps(rate: Fraction) -> int:
    """Frames per timecode second: 30 for 30000/1001, 24 for 24000/1001, 25 for 25."""
    return max(1, math.floor(rate + Fraction(1, 2)))


def supports_drop_frame(rate: Fraction) -> bool:
    """True only at 30000/1001 and 60000/1001, the rates drop-frame timecode is defined for."""
    return Fraction(rate) in _DROP_FRAME_RATES


def _dropped_per_minute(rate: Fraction) -> int:
    # 2 labels per minute at 29.97, 4 at 59.94: the skip scales with the nominal rate.
    return nominal_fps(rate) // 15


def timecode_to_frames(tc: str, rate: Fraction, *, field: str = "timecode") -> int:
    """Frames since 00:00:00:00 for a label "HH:MM:SS:FF" (non-drop) or "HH:MM:SS;FF" (drop)."""
    m = _TIMECODE_RE.match(tc.strip())
    if not m:
        raise BadRequest(
            f"{tc!r} is not an SMPTE timecode (HH:MM:SS:FF or HH:MM:SS;FF)", field=field
        )
    hours, minutes, seconds, frames = (int(m.group(i)) for i in (1, 2, 3, 5))
    drop = m.group(4) != ":"
    fps = nominal_fps(rate)
    if minutes >= 60 or seconds >= 60:
        raise BadRequest(f"{tc}: minutes and seconds must be below 60", field=field)
    if frames >= fps:
        raise BadRequest(
            f"{tc}: frame number {frames} is too large at {_rate_text(rate)} fps "
            f"(labels run from 00 to {fps - 1:02d})",
            field=field,
        )
    total_minutes = hours * 60 + minutes
    count = (total_minutes * 60 + seconds) * fps + frames
    if not drop:
        return count
    if not supports_drop_frame(rate):
        raise BadRequest(
            f"{tc} is a drop-frame timecode, but drop-frame exists only at 29.97 and 59.94 fps "
            f"(this source runs at {_rate_text(rate)} fps): use ':' before the frames",
            field=field,
        )
    skip = _dropped_per_minute(rate)
    if seconds == 0 and frames < skip and minutes % 10 != 0:
        skipped = ";00 and ;01" if skip == 2 else f";00 to ;{skip - 1:02d}"
        raise BadRequest(
            f"{tc.strip()} is not a valid drop-frame timecode: labels {skipped} are skipped "
            "at minutes not divisible by 10",
            field=field,
        )
    return count - skip * (total_minutes - total_minutes // 10)


def frames_to_timecode(frames: int, rate: Fraction, *, drop_frame: bool) -> str:
    """The SMPTE label of a frame count since 00:00:00:00 (24-hour clock; ';' when drop-frame)."""
    if frames < 0:
        raise ValueError(f"frame count must not be negative, got {frames}")
    fps = nominal_fps(rate)
    if drop_frame:
        if not supports_drop_frame(rate):
            raise ValueError(f"drop-frame timecode is undefined at {_rate_text(rate)} fps")
        skip = _dropped_per_minute(rate)
        per_minute = fps * 60 - skip
        per_ten_minutes = fps * 600 - skip * 9
        frames %= per_ten_minutes * 6 * 24
        tens, rest = divmod(frames, per_ten_minutes)
        # The first minute of each ten keeps all its labels; later minutes skip `skip` of them.
        extra = skip * 9 * tens
        if rest >= skip:
            extra += skip * ((rest - skip) // per_minute)
        frames += extra
    else:
        frames %= fps * 86400
    total_seconds, ff = divmod(frames, fps)
    total_minutes, ss = divmod(total_seconds, 60)
    hh, mm = divmod(total_minutes, 60)
    sep = ";" if drop_frame else ":"
    return f"{hh:02d}:{mm:02d}:{ss:02d}{sep}{ff:02d}"


def parse_clock(value: str, *, field: str) -> Fraction:
    """Exact seconds for "HH:MM:SS", "HH:MM:SS.mmm", "MM:SS" or "MM:SS.mmm"."""
    m = _CLOCK_RE.match(value.strip())
    if not m:
        raise BadRequest(f"{value!r} is not a time (HH:MM:SS.mmm or MM:SS.mmm)", field=field)
    hours = int(m.group(1)) if m.group(1) is not None else 0
    minutes = int(m.group(2))
    seconds = Fraction(m.group(3))
    if seconds >= 60 or (m.group(1) is not None and minutes >= 60):
        raise BadRequest(f"{value}: minutes and seconds must be below 60", field=field)
    return hours * 3600 + minutes * 60 + seconds


def time_to_frame(
    value: float | int | str,
    rate: Fraction,
    *,
    start_timecode: str | None,
    origin: TimecodeOrigin,
    field: str,
) -> int:
    """Index (0 = the source's first frame) selected by a time: seconds, clock or SMPTE label.

    Seconds select the first frame at or after them (ceil(t * rate)); used for an exclusive
    out-point this gives the exclusive end index. SMPTE labels name the frame directly,
    counted from `start_timecode` when `origin` is EMBEDDED, from the first frame when ZERO.
    """
    if isinstance(value, str) and _SMPTE_VALUE_RE.match(value.strip()):
        label = timecode_to_frames(value, rate, field=field)
        if origin is TimecodeOrigin.ZERO or not start_timecode:
            return label
        index = label - timecode_to_frames(start_timecode, rate, field="start_timecode")
        if index < 0:
            raise BadRequest(
                f"{value.strip()} is before the source's start timecode {start_timecode}; "
                "use timecode_origin 'zero' to count from the first frame",
                field=field,
            )
        return index
    return seconds_to_frame(_seconds(value, field=field), rate)


def seconds_to_frame(seconds: Fraction, rate: Fraction) -> int:
    """The first frame whose timestamp index/rate is at or after `seconds` (exact ceil)."""
    return math.ceil(seconds * rate)


def _seconds(value: float | int | str, *, field: str) -> Fraction:
    """Exact seconds from a number, a numeric string or a clock string; never negative."""
    if isinstance(value, bool):
        raise BadRequest(f"{value!r} is not a time", field=field)
    if isinstance(value, int):
        seconds = Fraction(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise BadRequest(f"{value!r} is not a time", field=field)
        # repr is the shortest decimal that round-trips: 65.2 means 652/10, not 65.2000000000000028.
        seconds = Fraction(repr(value))
    elif isinstance(value, str):
        seconds = _seconds_of_text(value, field=field)
    else:
        raise BadRequest(f"{value!r} is not a time", field=field)
    if seconds < 0:
        raise BadRequest(f"{value!r}: a time must not be negative", field=field)
    return seconds


def _seconds_of_text(value: str, *, field: str) -> Fraction:
    text = value.strip()
    if text.startswith("-"):
        raise BadRequest(f"{value!r}: a time must not be negative", field=field)
    if _SECONDS_RE.match(text):
        try:
            return Fraction(text.lstrip("+"))
        except ValueError:  # more digits than Python converts (4300)
            raise BadRequest("the time has too many digits", field=field) from None
    if ":" in text:
        return parse_clock(text, field=field)
    raise BadRequest(
        f"{value!r} is not a time: use seconds (65.2), HH:MM:SS.mmm, "
        "HH:MM:SS:FF or drop-frame HH:MM:SS;FF",
        field=field,
    )


def frame_to_seconds(index: int, rate: Fraction) -> Fraction:
    """Presentation time of frame `index`, relative to the first frame."""
    return Fraction(index) / rate


def describe_frame(index: int, rate: Fraction, *, start_timecode: str | None) -> dict[str, object]:
    """{"frame", "seconds", "timecode"}: the label follows the source's start timecode if any."""
    if start_timecode:
        base = timecode_to_frames(start_timecode, rate, field="start_timecode")
        drop = is_drop_frame_label(start_timecode)
    else:
        base, drop = 0, False
    return {
        "frame": index,
        "seconds": round(float(frame_to_seconds(index, rate)), 6),
        "timecode": frames_to_timecode(base + index, rate, drop_frame=drop),
    }


def is_drop_frame_label(tc: str) -> bool:
    """True when a label's frame separator marks drop-frame (';', or '.'/',' from some tools)."""
    m = _TIMECODE_RE.match(tc.strip())
    return bool(m and m.group(4) != ":")


def _rate_text(rate: Fraction) -> str:
    # 30000/1001 reads as 29.97 in messages; exact rates stay exact elsewhere.
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")
