"""Run a cut's FFmpeg processes: the video parts (two at a time), then the final mux."""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from fractions import Fraction
from pathlib import Path

from clipper.engine.ffmpeg import runner as ffmpeg
from clipper.engine.ffmpeg.argv import concat_list, mux_argv, part_argv
from clipper.engine.ffmpeg.runner import ProgressFn
from clipper.engine.ffmpeg.splice import cra_to_bla
from clipper.engine.media.ffprobe import MediaInfo
from clipper.engine.plan.parts import SegmentPlan
from clipper.errors import Canceled
from clipper.spec import Preset

#: Parts encoded at once: head and tail of a smart cut run side by side on two cores.
PARALLEL_PARTS = 2
#: Relative cost of copying a second of video versus encoding it (for the progress bar).
COPY_WEIGHT = 0.05


class _AnyEvent:
    """Set when the caller's cancel Event or our own abort Event is set."""

    def __init__(self, *events: threading.Event | None) -> None:
        self._events = [e for e in events if e is not None]

    def is_set(self) -> bool:
        return any(e.is_set() for e in self._events)


def run_jobs(
    source: str | Path,
    media: MediaInfo,
    plans: list[SegmentPlan],
    workdir: Path,
    output: Path,
    *,
    extension: str,
    preset: Preset,
    copy_audio: bool,
    start_timecode: str | None,
    ffmpeg_path: str,
    threads: int,
    timeout_seconds: float,
    progress: ProgressFn,
    cancel: threading.Event | None,
    keyframes: list[int],
) -> None:
    """Produce every planned video part, join them and mux the audio into `output`."""
    rate = media.frame_rate
    jobs: list[tuple[Path, list[str], float, float, bool]] = []  # …, weight, splice
    listed: list[tuple[Path, int, int]] = []
    for si, plan in enumerate(plans):
        for pi, part in enumerate(plan.parts):
            path = workdir / f"part-{si:03d}-{pi:02d}.ts"
            argv = part_argv(
                source,
                media,
                part,
                path,
                preset=preset,
                last_in_stream=part.end >= media.frame_count,
                ffmpeg_path=ffmpeg_path,
                threads=threads,
                seek_key=max((k for k in keyframes if k <= part.start), default=0),
            )
            seconds = float(Fraction(part.count) / rate)
            weight = seconds * (COPY_WEIGHT if part.mode == "copy" else 1.0)
            splice = part.drop_leading and media.video.codec == "hevc"
            jobs.append((path, argv, seconds, weight, splice))
            listed.append((path, part.count, part.lead_in))
    clip_seconds = sum(j[2] for j in jobs)
    mux_weight = clip_seconds * COPY_WEIGHT * 2
    total_weight = sum(j[3] for j in jobs) + mux_weight or 1.0
    done = [0.0] * (len(jobs) + 1)
    lock = threading.Lock()

    def report(slot: int, weight: float, fraction: float) -> None:
        with lock:
            done[slot] = weight * fraction
            progress("cutting", min(1.0, sum(done) / total_weight))

    abort = threading.Event()
    stop = _AnyEvent(cancel, abort)

    def run_one(slot: int) -> None:
        path, argv, seconds, weight, splice = jobs[slot]
        ffmpeg.run(
            argv,
            timeout_seconds=timeout_seconds,
            cancel=stop,
            progress=lambda _phase, f: report(slot, weight, f),
            expected_seconds=seconds,
        )
        if splice:
            cra_to_bla(path)
        report(slot, weight, 1.0)

    progress("cutting", 0.0)
    with ThreadPoolExecutor(max_workers=PARALLEL_PARTS) as pool:
        futures = [pool.submit(run_one, i) for i in range(len(jobs))]
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() for f in finished):
            abort.set()  # stop the siblings: one failed part fails the cut
        errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        real = [e for e in errors if not isinstance(e, Canceled)]
        raise (real or errors)[0]  # type: ignore[misc]
    list_path = workdir / "parts.ffconcat"
    list_path.write_text(concat_list(listed, rate))
    argv = mux_argv(
        source,
        media,
        plans,
        list_path,
        output,
        extension=extension,
        preset=preset,
        copy_audio=copy_audio,
        start_timecode=start_timecode,
        ffmpeg_path=ffmpeg_path,
    )
    ffmpeg.run(
        argv,
        timeout_seconds=timeout_seconds,
        cancel=cancel,
        progress=lambda _phase, f: report(len(jobs), mux_weight, f),
        expected_seconds=clip_seconds,
    )
    report(len(jobs), mux_weight, 1.0)
