"""Cut points: packets near the in/out points, keyframes, open-GOP detection, plans.

Everything here works from one packet listing (`ffprobe -read_intervals` around each cut
point), never from a scan of the whole source.
"""

from __future__ import annotations

import re
from fractions import Fraction

from clipper.engine.ffmpeg.encoders import SMART_CUT_CODECS
from clipper.engine.media.model import MediaInfo, Packet
from clipper.engine.plan.parts import FrameRange, SegmentPlan, plan_exact, plan_fast, plan_reencode
from clipper.errors import BadRequest, InvalidMedia
from clipper.spec import Accuracy, CutSpec, Preset

#: How far past an in-point packets are listed to find the next keyframe (longest GOP
#: handled by a smart cut; beyond it the head is simply re-encoded up to a known keyframe).
KEYFRAME_WINDOW_SECONDS = 10.0
#: Packets listed past an out-point (fast mode needs the reordered frames after it).
END_WINDOW_SECONDS = 1.0
#: MPEG-TS seeks land anywhere in a GOP: list packets from this far before an in-point so
#: the keyframe at or before it is known.
TS_LOOKBACK_SECONDS = 5.0
#: How far from the constant-rate grid (in frames) a frame time may lie: MKV's millisecond
#: timestamps stay within 0.03 of a frame even at 59.94 fps.
GRID_TOLERANCE_FRAMES = 0.25
#: Seconds decoded where a pure stream copy starts (its first keyframe decodes cleanly).
COPY_START_DECODE_SECONDS = 0.1
#: Seconds decoded at the start of each copied part and at the end of the clip: the frames
#: right after a seam (its keyframe and the B-frames that reference it) show a parameter-set
#: or reference mismatch at once.
COPY_DECODE_SECONDS = 0.5


def frame_index(media: MediaInfo, pts: float) -> int:
    """The source frame index a packet timestamp belongs to."""
    return round((Fraction(pts) - Fraction(media.video.start_seconds)) * media.frame_rate)


def floor_seconds(media: MediaInfo, index: int) -> float:
    """Frame `index`'s `-ss` time rounded down to the microsecond (never after the frame)."""
    micros = int(media.frame_pts(index) * 1_000_000)
    return micros / 1_000_000


def abs_time(media: MediaInfo, index: int) -> float:
    """Frame `index`'s timestamp as ffprobe read intervals count it."""
    return float(Fraction(media.video.start_seconds) + Fraction(index) / media.frame_rate)


def merge_intervals(
    intervals: list[tuple[float, float | None]],
) -> list[tuple[float, float | None]]:
    """Read intervals sorted, overlapping ones joined (an end of None = to the end)."""
    merged: list[tuple[float, float | None]] = []
    for a, b in sorted(intervals, key=lambda i: i[0]):
        if merged and (merged[-1][1] is None or a <= merged[-1][1]):
            prev_a, prev_b = merged[-1]
            merged[-1] = (prev_a, None if b is None or prev_b is None else max(prev_b, b))
        else:
            merged.append((a, b))
    return merged


def _has_open_gop(media: MediaInfo, packets: list[Packet]) -> bool:
    """Leading pictures: after a keyframe (decode order), a frame shown before it.

    That is an open GOP (HEVC CRA with RASL pictures, H.264 recovery-point I frames): the
    frames after such a keyframe reference frames before it, so a copy starting there breaks.
    Only the GOPs listed around the cut points are checked.
    """
    key_pts: float | None = None
    for p in packets:
        if p.keyframe:
            key_pts = p.pts
        elif key_pts is not None and p.pts < key_pts - 1e-6:
            return True
    return False


def leading_pictures(media: MediaInfo, packets: list[Packet]) -> dict[int, int]:
    """Per listed keyframe: packets after it (before the next keyframe) shown before it."""
    counts: dict[int, int] = {}
    key: tuple[int, float] | None = None
    for p in packets:
        if p.keyframe:
            key = (frame_index(media, p.pts), p.pts)
            counts[key[0]] = 0
        elif key is not None and p.pts < key[1] - 1e-6:
            counts[key[0]] += 1
    return {k: n for k, n in counts.items() if n}


def _decode_order_from(media: MediaInfo, packets: list[Packet], key: int) -> list[int]:
    indices = [frame_index(media, p.pts) for p in packets]
    for pos, (p, idx) in enumerate(zip(packets, indices, strict=True)):
        if p.keyframe and idx == key:
            return indices[pos:]
    return []


_PLAIN_SECONDS = re.compile(r"^\s*\+?\d+(\.\d*)?\s*$")
#: Margin added to intervals guessed before the probe (times typed by the user are at most
#: one frame before the frames they select).
GUESS_MARGIN_SECONDS = 0.1


def guessed_intervals(spec: CutSpec) -> list[tuple[float, float | None]] | None:
    """Packet read intervals from the request alone, for a source whose timestamps start at
    zero; None when a time needs the source's frame rate or timecode to place it."""
    intervals: list[tuple[float, float | None]] = []
    for seg in spec.segments:
        start, end = _plain_seconds(seg.start, 0.0), _plain_seconds(seg.end, None)
        if start is None or (seg.end is not None and end is None):
            return None
        head_end = start + KEYFRAME_WINDOW_SECONDS
        if end is not None:
            head_end = min(head_end, end)
            intervals.append((end, end + END_WINDOW_SECONDS + GUESS_MARGIN_SECONDS))
        intervals.append((start, head_end + GUESS_MARGIN_SECONDS))
    return merge_intervals(intervals)


def guess_fits(media: MediaInfo) -> bool:
    """True when intervals guessed from the request match `media`'s timeline."""
    starts = (media.video.start_seconds, media.format_start_seconds)
    return media.container != "mpegts" and all(abs(t) < 1e-3 for t in starts)


def _plain_seconds(value: object, default: float | None) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _PLAIN_SECONDS.match(value):
        return float(value)
    return None


def check_constant_rate(media: MediaInfo, packets: list[Packet], first: FrameRange) -> None:
    """InvalidMedia when the listed frames show a variable frame rate.

    Frame indices come from timestamps on a grid of 1/frame rate from the first frame; a
    variable-frame-rate source (phones record those) breaks that model, and a cut made with it
    would hold other frames than the ones asked for. Two signs, where the cut is decided:
    a frame time off the grid, or a hole in the grid from the keyframe before the first
    in-point over the next seconds (the listing is complete there). MP4/MOV files missing
    frames elsewhere are caught by the probe (fewer frames than their duration holds).
    """
    rate = float(media.frame_rate)
    start = media.video.start_seconds
    for p in packets:
        position = (p.pts - start) * rate
        off = abs(position - round(position))
        if off > GRID_TOLERANCE_FRAMES:
            _variable(f"the frame at {p.pts - start:.3f} s is {off:.2f} frame off the grid", rate)
    indices = [frame_index(media, p.pts) for p in packets]
    keys = [i for p, i in zip(packets, indices, strict=True) if p.keyframe and i <= first.start]
    if not keys:
        return
    # The listing (packet_intervals) runs without a gap from that keyframe to
    # KEYFRAME_WINDOW_SECONDS past the in-point, or to END_WINDOW_SECONDS past a nearer
    # out-point; its last frames in display order may be missing where decode order stops.
    reach = first.start + int(KEYFRAME_WINDOW_SECONDS * rate)
    if first.end < reach:
        reach = first.end + int(END_WINDOW_SECONDS * rate)
    # (A staged copy of the source ends sooner: 0.5 s past the last out-point.)
    highest = min(reach, max(indices)) - media.video.has_b_frames - 2
    seen = set(indices)
    missing = [i for i in range(max(keys), highest + 1) if i not in seen]
    if missing:
        _variable(f"no frame at {missing[0] / rate:.3f} s of the constant-rate grid", rate)


def _variable(detail: str, rate: float) -> None:
    raise InvalidMedia(
        f"the source has a variable frame rate ({detail}, {rate:.3f} fps nominal): Clipper "
        "cuts frame-exactly only constant-frame-rate video; convert it first "
        "(ffmpeg -fps_mode cfr)",
        field="source",
    )


def packet_intervals(
    media: MediaInfo, ranges: list[FrameRange]
) -> list[tuple[float, float | None]]:
    """The read intervals whose packets planning `ranges` needs: from each in-point to the
    next keyframe (at most KEYFRAME_WINDOW_SECONDS on), and a little past each out-point."""
    intervals: list[tuple[float, float | None]] = []
    for r in ranges:
        head_end = min(abs_time(media, r.start) + KEYFRAME_WINDOW_SECONDS, abs_time(media, r.end))
        # FFmpeg seeks by decode time: a keyframe shown after the in-point can be decoded
        # before it (reordering), and mov's seek then lands there, past the keyframe wanted.
        reorder = (media.video.has_b_frames + 1) / float(media.frame_rate)
        lookback = TS_LOOKBACK_SECONDS if media.container == "mpegts" else reorder
        intervals.append((abs_time(media, r.start) - lookback, head_end))
        if r.end < media.frame_count:
            t_end = abs_time(media, r.end)
            intervals.append((t_end, t_end + END_WINDOW_SECONDS))
    return merge_intervals(intervals)


def plan_segments(
    media: MediaInfo, spec: CutSpec, ranges: list[FrameRange], packets: list[Packet]
) -> tuple[list[SegmentPlan], list[int]]:
    """Plan every segment from the packets near the cut points; also the keyframes."""
    total = media.frame_count
    check_constant_rate(media, packets, min(ranges, key=lambda r: r.start))
    keys = sorted({frame_index(media, p.pts) for p in packets if p.keyframe})
    if spec.preset is not Preset.ORIGINAL:
        reason = f"preset {spec.preset.value} re-encodes the range"
        return [plan_reencode(r, reason) for r in ranges], keys
    plans = []
    if spec.accuracy is Accuracy.FAST:
        leading = leading_pictures(media, packets)
        for r in ranges:
            end_key = max((k for k in keys if k <= r.end), default=0)
            order = _decode_order_from(media, packets, end_key)
            plans.append(
                plan_fast(r, keys, total_frames=total, decode_order_at_end=order, leading=leading)
            )
        if media.video.codec != "hevc" and any(p.parts[0].drop_leading for p in plans):
            # HEVC marks leading pictures (RASL) and they are dropped; H.264 does not.
            raise BadRequest(
                "fast mode cannot start this clip: the keyframe before the in-point opens an "
                "open GOP whose first frames reference frames before the clip (H.264 does not "
                "mark them, so they cannot be dropped); use accuracy exact",
                field="accuracy",
            )
        return plans, keys
    unsafe = None
    if media.video.codec not in SMART_CUT_CODECS:
        unsafe = f"smart cut is not supported for {media.video.codec}"
    elif _has_open_gop(media, packets):
        unsafe = "open GOP: frames after a keyframe reference frames before it"
    plans = [plan_exact(r, keys, total_frames=total, unsafe_reason=unsafe) for r in ranges]
    return plans, keys


def decode_intervals(plans: list[SegmentPlan], rate: Fraction) -> list[tuple[float, float]] | None:
    """Output intervals the verification decodes: None (everything) when nothing is copied,
    else the re-encoded parts, the first seconds of each copied part and the last second."""
    if all(p.mode == "encode" for plan in plans for p in plan.parts):
        return None
    parts = [p for plan in plans for p in plan.parts]
    if len(parts) == 1 and parts[0].mode == "copy":
        # One stretch of the source's own packets: the packet check (which also requires a
        # keyframe first) says all there is to say; decoding would double fast mode's cost.
        return []
    if all(p.mode == "copy" for p in parts):
        # Nothing of ours to check inside the packets: decode where each part starts.
        starts, offset = [], 0
        for plan in plans:
            for part in plan.parts:
                t0 = float(Fraction(offset) / rate)
                starts.append((t0, t0 + COPY_START_DECODE_SECONDS))
                offset += part.count
        return starts
    intervals = []
    offset = 0
    for plan in plans:
        for part in plan.parts:
            t0, t1 = float(Fraction(offset) / rate), float(Fraction(offset + part.count) / rate)
            if part.mode == "encode":
                intervals.append((t0, t1))
            else:
                intervals.append((t0, min(t1, t0 + COPY_DECODE_SECONDS)))
            offset += part.count
    end = float(Fraction(offset) / rate)
    intervals.append((max(0.0, end - COPY_DECODE_SECONDS), end))
    return intervals


def direct_copy_seconds(
    media: MediaInfo, plan: SegmentPlan, packets: list[Packet]
) -> tuple[bool, float | None]:
    """(possible, video `-t`) for a one-process fast copy of `plan`.

    The `-t` lies half a frame before the DTS of the first unwanted packet, relative to the
    `-ss` the copy uses; None when the copy runs to the end.
    """
    got = plan.delivered
    if len(plan.parts) != 1 or plan.parts[0].drop_leading:
        return False, None
    if got.end >= media.frame_count:
        return True, None
    indices = [frame_index(media, p.pts) for p in packets]
    keys = [i for i, p in enumerate(packets) if p.keyframe and indices[i] <= got.end]
    if not keys:
        return False, None
    # The clean prefix ends right before the first packet (decode order) of a frame at or
    # after the end; DTS grow by one frame per packet, so half a frame before it is safe.
    position = max(keys, key=lambda i: (indices[i], i))
    first_out = next((i for i in range(position, len(packets)) if indices[i] >= got.end), None)
    if first_out is None or packets[first_out].dts is None:
        return False, None
    if got.start:
        base = media.format_start_seconds + floor_seconds(media, got.start)
    elif media.container == "mpegts":
        # Without -ss, FFmpeg counts an MPEG-TS input's -t from its video's start, not the
        # file's (measured: a stage whose AAC priming starts 21 ms before the video kept one
        # frame too many with the file's start).
        base = media.video.start_seconds
    else:
        base = media.format_start_seconds
    half = 0.5 / float(media.frame_rate)
    dts = packets[first_out].dts
    assert dts is not None
    return True, dts - half - base
