"""The engine facade: probe → resolve → plan → cut → verify → report (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from clipper import ffmpeg
from clipper import probe as probing
from clipper.cutter import direct_copy_argv, floor_seconds
from clipper.encoders import SMART_CUT_CODECS, reencode_video_args
from clipper.encoders import output_extension as _output_extension
from clipper.errors import BadRequest
from clipper.ffmpeg import ProgressFn
from clipper.plan import FrameRange, SegmentPlan, plan_exact, plan_fast, plan_reencode
from clipper.probe import MediaInfo, Packet
from clipper.report import AccuracyReport, overall_strategy, segment_report
from clipper.run_parts import run_jobs
from clipper.settings import Settings
from clipper.spec import Accuracy, CutSpec, Preset
from clipper.timecode import describe_frame, time_to_frame
from clipper.verify import verify_output

__all__ = [
    "AccuracyReport",
    "EngineConfig",
    "FrameRange",
    "MediaInfo",
    "ProgressFn",
    "cut",
    "keyframes_near",
    "output_extension",
    "probe",
    "reencode_video_args",
    "resolve_ranges",
]

#: How far past an in-point packets are listed to find the next keyframe (longest GOP
#: handled by a smart cut; beyond it the head is simply re-encoded up to a known keyframe).
KEYFRAME_WINDOW_SECONDS = 10.0
#: Packets listed past an out-point (fast mode needs the reordered frames after it).
END_WINDOW_SECONDS = 1.0
#: MPEG-TS seeks land anywhere in a GOP: list packets from this far before an in-point so
#: the keyframe at or before it is known.
TS_LOOKBACK_SECONDS = 5.0
#: Per-process wall-clock limit when the config sets none: base plus a multiple of the clip.
#: Seconds decoded where a pure stream copy starts (its first keyframe decodes cleanly).
COPY_START_DECODE_SECONDS = 0.1
#: Seconds decoded at the start of each copied part (covers a GOP; seams are checked there).
COPY_DECODE_SECONDS = 2.0
TIMEOUT_BASE_SECONDS = 120.0
TIMEOUT_PER_CLIP_SECOND = 10.0


@dataclass(frozen=True)
class EngineConfig:
    """How the engine runs FFmpeg."""

    ffmpeg_path: str = "ffmpeg"
    ffprobe_path: str = "ffprobe"
    threads: int = 0  # 0 = FFmpeg decides
    work_dir: Path | None = None
    timeout_seconds: float | None = None  # None = derived from the clip length

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        """The engine part of the service settings."""
        return cls(
            ffmpeg_path=settings.ffmpeg_path,
            ffprobe_path=settings.ffprobe_path,
            threads=settings.ffmpeg_threads,
            work_dir=settings.work_dir,
        )


DEFAULT_CONFIG = EngineConfig()


def probe(source: str | Path, *, config: EngineConfig = DEFAULT_CONFIG) -> MediaInfo:
    """Probe a source once (format, streams, start timecode); InvalidMedia if unreadable."""
    return probing.probe(source, ffprobe_path=config.ffprobe_path)


def output_extension(media: MediaInfo, preset: Preset) -> str:
    """The output container's extension (.mp4, .mov, .mkv or .ts) for `media` and `preset`."""
    return _output_extension(media, preset)


def _index(media: MediaInfo, pts: float) -> int:
    return round((Fraction(pts) - Fraction(media.video.start_seconds)) * media.frame_rate)


def _abs_time(media: MediaInfo, index: int) -> float:
    return float(Fraction(media.video.start_seconds) + Fraction(index) / media.frame_rate)


def _merge(intervals: list[tuple[float, float | None]]) -> list[tuple[float, float | None]]:
    merged: list[tuple[float, float | None]] = []
    for a, b in sorted(intervals, key=lambda i: i[0]):
        if merged and (merged[-1][1] is None or a <= merged[-1][1]):
            prev_a, prev_b = merged[-1]
            merged[-1] = (prev_a, None if b is None or prev_b is None else max(prev_b, b))
        else:
            merged.append((a, b))
    return merged


def keyframes_near(
    source: str | Path,
    media: MediaInfo,
    seconds: Sequence[float],
    *,
    config: EngineConfig = DEFAULT_CONFIG,
) -> list[float]:
    """Keyframe times (seconds from the first frame) around the given points."""
    intervals: list[tuple[float, float | None]] = [
        (_abs_time(media, 0) + s, _abs_time(media, 0) + s + KEYFRAME_WINDOW_SECONDS)
        for s in seconds
    ]
    packets = probing.read_packets(
        source, media, _merge(intervals), ffprobe_path=config.ffprobe_path
    )
    rate = media.frame_rate
    return sorted({float(Fraction(_index(media, p.pts)) / rate) for p in packets if p.keyframe})


def _frame(media: MediaInfo, spec: CutSpec, value: float | int | str, field: str) -> int:
    return time_to_frame(
        value,
        media.frame_rate,
        start_timecode=media.start_timecode,
        origin=spec.timecode_origin,
        field=field,
    )


def resolve_ranges(media: MediaInfo, spec: CutSpec) -> list[FrameRange]:
    """Requested segments → frame ranges; BadRequest naming "start"/"end" for a single
    segment, "segments[i].start"/"segments[i].end" otherwise."""
    single = len(spec.segments) == 1
    total = media.frame_count
    ranges = []
    for i, seg in enumerate(spec.segments):
        f_start = "start" if single else f"segments[{i}].start"
        f_end = "end" if single else f"segments[{i}].end"
        start = 0 if seg.start is None else _frame(media, spec, seg.start, f_start)
        end = total if seg.end is None else _frame(media, spec, seg.end, f_end)
        if start >= total:
            raise BadRequest(
                f"start is at or past the end of the source ({media.duration_seconds:.3f} s)",
                field=f_start,
            )
        if end == total + 1:
            end = total  # a client's "end = duration" rounded up by less than a frame
        if end > total:
            raise BadRequest(
                f"end is past the end of the source ({media.duration_seconds:.3f} s)",
                field=f_end,
            )
        if end <= start:
            raise BadRequest("end must be after start (the range selects no frame)", field=f_end)
        ranges.append(FrameRange(start, end))
    return ranges


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


def _decode_order_from(media: MediaInfo, packets: list[Packet], key: int) -> list[int]:
    indices = [_index(media, p.pts) for p in packets]
    for pos, (p, idx) in enumerate(zip(packets, indices, strict=True)):
        if p.keyframe and idx == key:
            return indices[pos:]
    return []


def plan_segments(
    source: str | Path,
    media: MediaInfo,
    spec: CutSpec,
    ranges: list[FrameRange],
    *,
    config: EngineConfig = DEFAULT_CONFIG,
    cancel: threading.Event | None = None,
) -> tuple[list[SegmentPlan], list[int], list[Packet]]:
    """Read packets near the cut points once, then plan every segment; also the keyframes
    and the packets."""
    total = media.frame_count
    intervals: list[tuple[float, float | None]] = []
    for r in ranges:
        head_end = min(_abs_time(media, r.start) + KEYFRAME_WINDOW_SECONDS, _abs_time(media, r.end))
        lookback = TS_LOOKBACK_SECONDS if media.container == "mpegts" else 0.0
        intervals.append((_abs_time(media, r.start) - lookback, head_end))
        if r.end < total:
            t_end = _abs_time(media, r.end)
            intervals.append((t_end, t_end + END_WINDOW_SECONDS))
    packets = probing.read_packets(
        source, media, _merge(intervals), ffprobe_path=config.ffprobe_path, cancel=cancel
    )
    keys = sorted({_index(media, p.pts) for p in packets if p.keyframe})
    if spec.preset is not Preset.ORIGINAL:
        reason = f"preset {spec.preset.value} re-encodes the range"
        return [plan_reencode(r, reason) for r in ranges], keys, packets
    plans = []
    if spec.accuracy is Accuracy.FAST:
        for r in ranges:
            end_key = max((k for k in keys if k <= r.end), default=0)
            order = _decode_order_from(media, packets, end_key)
            plans.append(plan_fast(r, keys, total_frames=total, decode_order_at_end=order))
        return plans, keys, packets
    unsafe = None
    if media.video.codec not in SMART_CUT_CODECS:
        unsafe = f"smart cut is not supported for {media.video.codec}"
    elif _has_open_gop(media, packets):
        unsafe = "open GOP: frames after a keyframe reference frames before it"
    plans = [plan_exact(r, keys, total_frames=total, unsafe_reason=unsafe) for r in ranges]
    return plans, keys, packets


def decode_intervals(plans: list[SegmentPlan], rate: Fraction) -> list[tuple[float, float]] | None:
    """Output intervals the verification decodes: None (everything) when nothing is copied,
    else the re-encoded parts, the first seconds of each copied part and the last second."""
    if all(p.mode == "encode" for plan in plans for p in plan.parts):
        return None
    if all(p.mode == "copy" for plan in plans for p in plan.parts):
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
    intervals.append((max(0.0, end - 1.0), end))
    return intervals


def direct_copy_seconds(
    media: MediaInfo, plan: SegmentPlan, packets: list[Packet]
) -> tuple[bool, float | None]:
    """(possible, video `-t`) for a one-process fast copy of `plan`.

    The `-t` lies halfway between the DTS of the last wanted packet and the first unwanted
    one, relative to the `-ss` the copy uses; None when the copy runs to the end.
    """
    got = plan.delivered
    if got.end >= media.frame_count:
        return True, None
    end_key = max(
        (_index(media, p.pts) for p in packets if p.keyframe and _index(media, p.pts) < got.end),
        default=None,
    )
    if end_key is None:
        return False, None
    positions = [i for i, p in enumerate(packets) if p.keyframe and _index(media, p.pts) == end_key]
    pos = positions[0] + (got.end - end_key)
    if pos >= len(packets) or packets[pos - 1].dts is None or packets[pos].dts is None:
        return False, None
    base = media.format_start_seconds + (floor_seconds(media, got.start) if got.start else 0.0)
    last_in, first_out = packets[pos - 1].dts, packets[pos].dts
    assert last_in is not None and first_out is not None
    if first_out <= last_in:
        return False, None
    return True, (last_in + first_out) / 2 - base


def _timeout(config: EngineConfig, plans: list[SegmentPlan], media: MediaInfo) -> float:
    if config.timeout_seconds is not None:
        return config.timeout_seconds
    seconds = sum(p.delivered.count for p in plans) / float(media.frame_rate)
    return TIMEOUT_BASE_SECONDS + TIMEOUT_PER_CLIP_SECOND * seconds


def cut(
    source: str | Path,
    output: Path,
    spec: CutSpec,
    *,
    config: EngineConfig = DEFAULT_CONFIG,
    media: MediaInfo | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> AccuracyReport:
    """Cut `spec` from `source` into `output` (written only once verified); the report."""
    report_progress = progress or (lambda phase, fraction: None)
    report_progress("probing", 0.0)
    if media is None:
        media = probing.probe(source, ffprobe_path=config.ffprobe_path, cancel=cancel)
    ranges = resolve_ranges(media, spec)
    plans, keys, packets = plan_segments(source, media, spec, ranges, config=config, cancel=cancel)
    report_progress("probing", 1.0)
    extension = output_extension(media, spec.preset)
    output = Path(output)
    timeout = _timeout(config, plans, media)
    base = config.work_dir or output.parent
    base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".clipper-", dir=base))
    staged = output.parent / f".{output.name}.{secrets.token_hex(4)}.tmp"
    try:
        tc = None
        if media.start_timecode:
            first = describe_frame(
                plans[0].delivered.start, media.frame_rate, start_timecode=media.start_timecode
            )
            tc = str(first["timecode"])
        direct, video_seconds = False, None
        if spec.accuracy is Accuracy.FAST and spec.preset is Preset.ORIGINAL and len(plans) == 1:
            direct, video_seconds = direct_copy_seconds(media, plans[0], packets)
        if direct:
            report_progress("cutting", 0.0)
            argv = direct_copy_argv(
                source,
                media,
                plans[0],
                staged,
                video_seconds=video_seconds,
                extension=extension,
                start_timecode=tc,
                ffmpeg_path=config.ffmpeg_path,
            )
            seconds = plans[0].delivered.count / float(media.frame_rate)
            ffmpeg.run(
                argv,
                timeout_seconds=timeout,
                cancel=cancel,
                progress=report_progress,
                expected_seconds=seconds,
            )
            report_progress("cutting", 1.0)
        else:
            run_jobs(
                source,
                media,
                plans,
                workdir,
                staged,
                extension=extension,
                preset=spec.preset,
                copy_audio=spec.accuracy is Accuracy.FAST and spec.preset is Preset.ORIGINAL,
                start_timecode=tc,
                ffmpeg_path=config.ffmpeg_path,
                threads=config.threads,
                timeout_seconds=timeout,
                progress=report_progress,
                cancel=cancel,
                keyframes=keys,
            )
        report_progress("verifying", 0.0)
        expected = sum(p.delivered.count for p in plans)
        verification = verify_output(
            staged,
            expected_frames=expected,
            frame_rate=media.frame_rate,
            expect_audio=bool(media.audio),
            # MPEG-TS seeks land mid-GOP (decode errors that are not in the file): decode all.
            decode_intervals=None
            if extension == ".ts"
            else decode_intervals(plans, media.frame_rate),
            ffprobe_path=config.ffprobe_path,
            timeout_seconds=timeout,
            cancel=cancel,
        )
        os.replace(staged, output)
        report_progress("verifying", 1.0)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        staged.unlink(missing_ok=True)
    segments = [segment_report(p, media.frame_rate, media.start_timecode) for p in plans]
    return AccuracyReport(
        accuracy=spec.accuracy.value,
        preset=spec.preset.value,
        strategy=overall_strategy(plans),
        frame_count=verification.frame_count,
        duration_seconds=verification.duration_seconds,
        frame_rate=f"{media.frame_rate.numerator}/{media.frame_rate.denominator}",
        source_start_timecode=media.start_timecode,
        segments=segments,
        frames_reencoded=sum(s.frames_reencoded for s in segments),
        frames_copied=sum(s.frames_copied for s in segments),
        verification=verification,
    )
