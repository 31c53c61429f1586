"""The engine facade: probe → resolve → plan → cut → verify → report (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Literal

from clipper import ffmpeg
from clipper import probe as probing
from clipper.cutpoints import (
    KEYFRAME_WINDOW_SECONDS,
    abs_time,
    decode_intervals,
    direct_copy_seconds,
    frame_index,
    guess_fits,
    guessed_intervals,
    leading_pictures,
    merge_intervals,
    packet_intervals,
    plan_segments,
)
from clipper.cutter import direct_copy_argv
from clipper.encoders import output_extension as _output_extension
from clipper.encoders import reencode_video_args
from clipper.errors import BadRequest, Canceled, InvalidMedia
from clipper.ffmpeg import ProgressFn
from clipper.media import Packet
from clipper.mp4probe import Movie, open_movie
from clipper.plan import FrameRange, SegmentPlan
from clipper.probe import MediaInfo
from clipper.report import AccuracyReport, overall_strategy, segment_report
from clipper.run_parts import run_jobs
from clipper.settings import Settings
from clipper.spec import Accuracy, CutSpec, Preset
from clipper.staging import stage as stage_span
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

#: Per-process wall-clock limit when the config sets none: base plus a multiple of the clip.
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
    #: Copy the span a cut needs into a local file first: "auto" for http(s) sources.
    stage: Literal["auto", "always", "never"] = "auto"

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
    return probing.probe(source, ffprobe_path=config.ffprobe_path, ffmpeg_path=config.ffmpeg_path)


def output_extension(media: MediaInfo, preset: Preset) -> str:
    """The output container's extension (.mp4, .mov, .mkv or .ts) for `media` and `preset`."""
    return _output_extension(media, preset)


def keyframes_near(
    source: str | Path,
    media: MediaInfo,
    seconds: Sequence[float],
    *,
    config: EngineConfig = DEFAULT_CONFIG,
) -> list[float]:
    """Keyframe times (seconds from the first frame) around the given points."""
    intervals: list[tuple[float, float | None]] = [
        (abs_time(media, 0) + s, abs_time(media, 0) + s + KEYFRAME_WINDOW_SECONDS) for s in seconds
    ]
    packets = probing.read_packets(
        source, media, merge_intervals(intervals), ffprobe_path=config.ffprobe_path
    )
    rate = media.frame_rate
    return sorted(
        {float(Fraction(frame_index(media, p.pts)) / rate) for p in packets if p.keyframe}
    )


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
    if media.variable_frame_rate:
        raise InvalidMedia(
            f"the source has a variable frame rate ({media.frame_count} frames where "
            f"{media.video.frame_rate} fps would give more): Clipper cuts frame-exactly only "
            "constant-frame-rate video; convert it first (ffmpeg -fps_mode cfr)",
            field="source",
        )
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


def _timeout(config: EngineConfig, frames: int, media: MediaInfo) -> float:
    if config.timeout_seconds is not None:
        return config.timeout_seconds
    seconds = frames / float(media.frame_rate)
    return TIMEOUT_BASE_SECONDS + TIMEOUT_PER_CLIP_SECOND * seconds


#: NAL unit types the MPEG-TS muxer adds in-band: parameter sets and access unit delimiters.
_TS_ADDED_UNITS = {"h264": "7|8|9", "hevc": "32|33|34|35"}


def _ts_added_units(source_container: str, media: MediaInfo) -> str | None:
    """NAL types to strip when `media` is an MPEG-TS stage of an MP4/MOV/MKV source."""
    if media.container != "mpegts" or source_container not in ("mov", "matroska"):
        return None
    return _TS_ADDED_UNITS.get(media.video.codec)


def _wants_stage(config: EngineConfig, source: str | Path) -> bool:
    if config.stage == "auto":
        return ffmpeg.is_remote(source)
    return config.stage == "always"


def _movie(source: str | Path, spec: CutSpec) -> Movie | None:
    """The in-process reading of a local MP4/MOV source, for cuts that copy every packet
    (one range, `fast`, `original`: nothing is re-encoded); None otherwise or if unsuited."""
    copies_only = spec.accuracy is Accuracy.FAST and spec.preset is Preset.ORIGINAL
    if not copies_only or len(spec.segments) != 1 or ffmpeg.is_remote(source):
        return None
    return open_movie(Path(ffmpeg.media_url(source).removeprefix("file:")))


def _plan(
    source: str | Path,
    media: MediaInfo,
    spec: CutSpec,
    ranges: list[FrameRange],
    workdir: Path,
    config: EngineConfig,
    staging: bool,
    listed: list[Packet] | None,
    timeout: float,
    cancel: threading.Event | None,
) -> tuple[str | Path, MediaInfo, list[SegmentPlan], list[int], list[Packet]]:
    """(what to read, its MediaInfo, plans, keyframes, packets), staging the span first
    when asked: then packets are listed from the local copy, not the remote source."""
    original, found = source, media
    if staging:
        got = stage_span(
            source,
            media,
            ranges,
            workdir,
            ffmpeg_path=config.ffmpeg_path,
            ffprobe_path=config.ffprobe_path,
            timeout=timeout,
            cancel=cancel,
        )
        if got is not None:
            source, media = got
            listed = None
    plans, keys, packets = plan_segments(
        source, media, spec, ranges, ffprobe_path=config.ffprobe_path, cancel=cancel, packets=listed
    )
    first = min(r.start for r in ranges)
    if source is not original and (
        not any(k <= first for k in keys) or any(leading_pictures(media, packets).values())
    ):
        # The stage began after the keyframe the first part needs (an MPEG-TS byte seek
        # landed late), or on an open-GOP keyframe whose leading pictures reference frames
        # the stage does not hold: read the source itself.
        return _plan(original, found, spec, ranges, workdir, config, False, None, timeout, cancel)
    if any(p.mode == "encode" for plan in plans for p in plan.parts):
        # x264 writes its settings only into the source's first frame: read them there.
        x264 = probing.with_encoder_settings(
            original, found, ffmpeg_path=config.ffmpeg_path, cancel=cancel
        ).x264_options
        media = replace(media, x264_options=x264)
    return source, media, plans, keys, packets


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
    staging = _wants_stage(config, source)
    listed = None
    movie = _movie(source, spec) if media is None and not staging else None
    if movie is not None:
        media = movie.media
    if media is None:
        guess = None if staging else guessed_intervals(spec)
        if guess is None:
            media = probing.probe(
                source,
                ffprobe_path=config.ffprobe_path,
                ffmpeg_path=config.ffmpeg_path,
                cancel=cancel,
                encoder_settings=False,
            )
        else:  # one ffprobe for the probe and the packets near the cut points
            media, listed = probing.probe_with_packets(
                source, guess, ffprobe_path=config.ffprobe_path, cancel=cancel
            )
            listed = listed if guess_fits(media) else None
    ranges = resolve_ranges(media, spec)
    if movie is not None:
        listed = movie.packets(packet_intervals(media, ranges))
    extension = output_extension(media, spec.preset)
    output = Path(output)
    timeout = _timeout(config, sum(r.end - r.start for r in ranges), media)
    base = config.work_dir or output.parent
    base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".clipper-", dir=base))
    staged = output.parent / f".{output.name}.{secrets.token_hex(4)}.tmp"
    try:
        container = media.container
        source, media, plans, keys, packets = _plan(
            source, media, spec, ranges, workdir, config, staging, listed, timeout, cancel
        )
        report_progress("probing", 1.0)
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
                strip_units=_ts_added_units(container, media),
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
        if cancel is not None and cancel.is_set():
            # MP4/MOV outputs are checked in-process: no FFmpeg there to notice the cancel.
            raise Canceled("canceled while the output was being verified")
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
