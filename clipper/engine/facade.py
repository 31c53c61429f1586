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
from typing import Literal

from clipper.engine.ffmpeg import runner as ffmpeg
from clipper.engine.ffmpeg.argv import direct_copy_argv
from clipper.engine.ffmpeg.encoders import output_extension as _output_extension
from clipper.engine.ffmpeg.encoders import reencode_video_args
from clipper.engine.ffmpeg.execute import run_jobs
from clipper.engine.ffmpeg.runner import ProgressFn
from clipper.engine.media import ffprobe as probing
from clipper.engine.media.ffprobe import MediaInfo
from clipper.engine.plan.cutpoints import (
    KEYFRAME_WINDOW_SECONDS,
    abs_time,
    decode_intervals,
    direct_copy_seconds,
    frame_index,
    guess_fits,
    guessed_intervals,
    merge_intervals,
    packet_intervals,
)
from clipper.engine.plan.parts import FrameRange
from clipper.engine.plan.prepare import in_process_movie, plan_cut, ts_added_units
from clipper.engine.plan.ranges import resolve_ranges
from clipper.engine.report import AccuracyReport, overall_strategy, segment_report
from clipper.engine.verify import verify_output
from clipper.errors import Canceled
from clipper.settings import Settings
from clipper.spec import Accuracy, CutSpec, Preset
from clipper.timecode import describe_frame

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


def _timeout(config: EngineConfig, frames: int, media: MediaInfo) -> float:
    if config.timeout_seconds is not None:
        return config.timeout_seconds
    seconds = frames / float(media.frame_rate)
    return TIMEOUT_BASE_SECONDS + TIMEOUT_PER_CLIP_SECOND * seconds


def _wants_stage(config: EngineConfig, source: str | Path) -> bool:
    if config.stage == "auto":
        return ffmpeg.is_remote(source)
    return config.stage == "always"


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
    movie = in_process_movie(source, spec) if media is None and not staging else None
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
        source, media, plans, keys, packets = plan_cut(
            source,
            media,
            spec,
            ranges,
            workdir,
            ffmpeg_path=config.ffmpeg_path,
            ffprobe_path=config.ffprobe_path,
            staging=staging,
            listed=listed,
            timeout=timeout,
            cancel=cancel,
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
                strip_units=ts_added_units(container, media),
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
