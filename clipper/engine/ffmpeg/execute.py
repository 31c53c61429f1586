"""Run a planned cut's FFmpeg processes: one direct copy, or the video parts (two at a time)
and then the final mux."""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from clipper.engine.context import CancelFlag, RunContext
from clipper.engine.ffmpeg import runner
from clipper.engine.ffmpeg.argv import (
    concat_list,
    direct_copy_argv,
    metadata_text,
    mux_argv,
    part_argv,
)
from clipper.engine.ffmpeg.splice import cra_to_bla
from clipper.engine.plan.cutplan import CutPlan
from clipper.engine.plan.parts import Part
from clipper.errors import Canceled

#: Parts encoded at once: head and tail of a smart cut run side by side on two cores.
PARALLEL_PARTS = 2
#: Relative cost of copying a second of video versus encoding it (for the progress bar).
COPY_WEIGHT = 0.05


class _AnyEvent:
    """Set when the caller's cancel flag or our own abort Event is set."""

    def __init__(self, *flags: CancelFlag | None) -> None:
        self._flags = [f for f in flags if f is not None]

    def is_set(self) -> bool:
        return any(f.is_set() for f in self._flags)


@dataclass(frozen=True)
class PartJob:
    """One FFmpeg process producing one video part of the output."""

    part: Part
    path: Path
    argv: list[str]
    seconds: float

    @property
    def weight(self) -> float:
        """Its share of the cut's work (for progress): a copy costs little."""
        return self.seconds * (COPY_WEIGHT if self.part.mode == "copy" else 1.0)


class _Progress:
    """The cut's progress, summed over the parts and the mux by their weights."""

    def __init__(self, ctx: RunContext, weights: list[float]) -> None:
        self._ctx, self._weights = ctx, weights
        self._done = [0.0] * len(weights)
        self._total = sum(weights) or 1.0
        self._lock = threading.Lock()

    def slot(self, index: int) -> RunContext:
        """A context whose progress reports into slot `index`."""
        return self._ctx.with_progress(lambda _phase, f: self.report(index, f))

    def report(self, index: int, fraction: float) -> None:
        with self._lock:
            self._done[index] = self._weights[index] * fraction
            self._ctx.report("cutting", min(1.0, sum(self._done) / self._total))


def execute(plan: CutPlan, output: Path, ctx: RunContext) -> None:
    """Write the planned cut into `output` (verification comes after)."""
    ctx.report("cutting", 0.0)
    if plan.direct_copy is not None:
        chapters = _metadata_file(plan, ctx) if plan.layout.chapters else None
        argv = direct_copy_argv(plan, output, ctx.ffmpeg_path, chapters)
        runner.run(argv, ctx, expected_seconds=plan.clip_seconds)
    else:
        run_parts(plan, output, ctx)
    ctx.report("cutting", 1.0)


def _metadata_file(plan: CutPlan, ctx: RunContext) -> Path:
    """The clip's tags and re-timed chapters as an FFMETADATA file in the scratch folder."""
    path = ctx.scratch / "metadata.ffmeta"
    path.write_text(metadata_text(plan), encoding="utf-8")
    return path


def part_jobs(plan: CutPlan, ctx: RunContext) -> list[PartJob]:
    """One job per planned part, each writing a video-only MPEG-TS file in the scratch folder."""
    rate = plan.frame_rate
    jobs = []
    for si, segment in enumerate(plan.segments):
        for pi, part in enumerate(segment.parts):
            path = ctx.scratch / f"part-{si:03d}-{pi:02d}.ts"
            argv = part_argv(plan, part, path, ctx.config)
            jobs.append(PartJob(part, path, argv, float(Fraction(part.count) / rate)))
    return jobs


def _run_jobs(jobs: list[PartJob], plan: CutPlan, progress: _Progress, ctx: RunContext) -> None:
    """Run the jobs, PARALLEL_PARTS at a time; the first failure stops the others."""
    abort = threading.Event()
    stop = _AnyEvent(ctx.cancel, abort)
    hevc = plan.media.video.codec == "hevc"

    def run_one(slot: int) -> None:
        job = jobs[slot]
        runner.run(job.argv, progress.slot(slot).with_cancel(stop), expected_seconds=job.seconds)
        if job.part.drop_leading and hevc:
            cra_to_bla(job.path)
        progress.report(slot, 1.0)

    with ThreadPoolExecutor(max_workers=PARALLEL_PARTS) as pool:
        futures = [pool.submit(run_one, i) for i in range(len(jobs))]
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() for f in finished):
            abort.set()  # stop the siblings: one failed part fails the cut
        errors = [e for f in futures if (e := f.exception()) is not None]
    if errors:
        real = [e for e in errors if not isinstance(e, Canceled)]
        raise (real or errors)[0]


def run_parts(plan: CutPlan, output: Path, ctx: RunContext) -> None:
    """Produce every planned video part, join them and mux the audio into `output`."""
    jobs = part_jobs(plan, ctx)
    clip_seconds = sum(j.seconds for j in jobs)
    mux_weight = clip_seconds * COPY_WEIGHT * 2
    progress = _Progress(ctx, [j.weight for j in jobs] + [mux_weight])
    _run_jobs(jobs, plan, progress, ctx)
    list_path = ctx.scratch / "parts.ffconcat"
    list_path.write_text(concat_list([(j.path, j.part.count, j.part.lead_in) for j in jobs],
                                     plan.frame_rate))  # fmt: skip
    metadata = _metadata_file(plan, ctx) if plan.layout.chapters or plan.media.tags else None
    argv = mux_argv(plan, list_path, output, ctx.ffmpeg_path, metadata)
    runner.run(argv, progress.slot(len(jobs)), expected_seconds=clip_seconds)
    progress.report(len(jobs), 1.0)
