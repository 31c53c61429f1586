"""The engine facade: probe → resolve → plan → cut → verify → report (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from clipper.engine.context import (
    DEFAULT_CONFIG,
    DEFAULT_CONTEXT,
    TIMEOUT_BASE_SECONDS,
    TIMEOUT_PER_CLIP_SECOND,
    EngineConfig,
    ProgressFn,
    RunContext,
)
from clipper.engine.ffmpeg import inputs
from clipper.engine.ffmpeg.encoders import output_extension as _output_extension
from clipper.engine.ffmpeg.encoders import reencode_video_args
from clipper.engine.ffmpeg.execute import execute
from clipper.engine.media import ffprobe as probing
from clipper.engine.media.model import MediaInfo
from clipper.engine.plan.cutpoints import (
    KEYFRAME_WINDOW_SECONDS,
    abs_time,
    frame_index,
    merge_intervals,
)
from clipper.engine.plan.parts import FrameRange
from clipper.engine.plan.ranges import resolve_ranges
from clipper.engine.prepare import plan_cut, read_source
from clipper.engine.report import AccuracyReport, build_report
from clipper.engine.verify import verify_cut
from clipper.errors import Canceled
from clipper.spec import CutSpec, Preset

__all__ = [
    "TIMEOUT_BASE_SECONDS",
    "TIMEOUT_PER_CLIP_SECOND",
    "AccuracyReport",
    "EngineConfig",
    "FrameRange",
    "MediaInfo",
    "ProgressFn",
    "RunContext",
    "cut",
    "keyframes_near",
    "output_extension",
    "probe",
    "reencode_video_args",
    "resolve_ranges",
]


def probe(source: str | Path, *, config: EngineConfig = DEFAULT_CONFIG) -> MediaInfo:
    """Probe a source once (format, streams, start timecode); InvalidMedia if unreadable."""
    return probing.probe(source, RunContext(config))


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
    packets = probing.read_packets(source, media, merge_intervals(intervals), RunContext(config))
    rate = media.frame_rate
    return sorted(
        {float(Fraction(frame_index(media, p.pts)) / rate) for p in packets if p.keyframe}
    )


def _wants_stage(config: EngineConfig, source: str | Path) -> bool:
    if config.stage == "auto":
        return inputs.is_remote(source)
    return config.stage == "always"


@contextmanager
def _scratch(ctx: RunContext, output: Path) -> Iterator[RunContext]:
    """The cut's private work folder, removed afterwards whatever happened."""
    base = ctx.config.work_dir or output.parent
    base.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=".clipper-", dir=base))
    try:
        yield replace(ctx, work_dir=work_dir)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


@contextmanager
def _staged_output(output: Path) -> Iterator[Path]:
    """A temporary name beside `output`: renamed over it once verified, else removed."""
    staged = output.parent / f".{output.name}.{secrets.token_hex(4)}.tmp"
    try:
        yield staged
    finally:
        staged.unlink(missing_ok=True)


def cut(
    source: str | Path,
    output: Path,
    spec: CutSpec,
    *,
    media: MediaInfo | None = None,
    context: RunContext = DEFAULT_CONTEXT,
) -> AccuracyReport:
    """Cut `spec` from `source` into `output` (written only once verified); the report.

    `media` is the source's probe when the caller has it (the service caches it by ETag);
    `context` carries the config, the cancel flag and the progress callback. The steps:
    media → plan → execute (direct copy | parts) → verify → report.
    """
    ctx, config = context, context.config
    output = Path(output)
    staging = _wants_stage(config, source)
    ctx.report("probing", 0.0)
    facts = read_source(source, spec, ctx, media=media, staging=staging)
    clip_seconds = sum(r.count for r in facts.ranges) / float(facts.media.frame_rate)
    ctx = ctx.with_timeout(config.timeout_for(clip_seconds))
    with _scratch(ctx, output) as ctx, _staged_output(output) as staged:
        plan = plan_cut(source, spec, facts, ctx, staging=staging)
        ctx.report("probing", 1.0)
        execute(plan, staged, ctx)
        ctx.report("verifying", 0.0)
        verification = verify_cut(plan, staged, ctx)
        if ctx.canceled:
            # MP4/MOV outputs are checked in-process: no FFmpeg there to notice the cancel.
            raise Canceled("canceled while the output was being verified")
        os.replace(staged, output)
        ctx.report("verifying", 1.0)
    return build_report(plan, verification)
