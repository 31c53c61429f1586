"""Engine benchmark: Clipper `exact`/`fast` vs raw FFmpeg copy/re-encode and smartcut.

Every figure that matters is a ratio between two timings taken in the same run on the same
machine, so a busy or slow machine shifts the medians but much less the ratios. Timings are
never asserted: the table shows the product's targets next to the measured ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from rich.console import Console

from bench import frames, media, methods
from bench.table import Row, render
from clipper.spec import TimecodeOrigin
from clipper.timecode import time_to_frame

HELP = "time Clipper exact/fast cuts against raw ffmpeg copy, a full re-encode and smartcut"
DEFAULT_OUT_DIR = Path(__file__).resolve().parent / "out"

ZERO = TimecodeOrigin.ZERO
RATE = Fraction(media.FPS)
console = Console(stderr=True)


@dataclass(frozen=True)
class Case:
    """One clip to cut: which source, where, how long."""

    key: str
    title: str
    long_source: bool
    seconds: int


#: Each clip sits in the middle of its source with its in-point this far after a keyframe
#: (sources have one every 2 s), so neither end is on a keyframe, nor on a frame's timestamp:
#: the selection rule (first frame at or after t) decides which frames are wanted.
IN_POINT_AFTER_KEYFRAME_SECONDS = 0.55
CASES = (
    Case("10s", "10 s, 1-min source", long_source=False, seconds=10),
    Case("60s", "60 s, long source", long_source=True, seconds=60),
    Case("10s-long", "10 s, long source", long_source=True, seconds=10),
)
METHODS = ("raw copy", "raw re-encode", "clipper exact", "clipper fast", "smartcut")
#: The long-source case only needs what the long/short ratio compares.
LONG_CASE_METHODS = ("raw copy", "clipper exact", "clipper fast", "smartcut")


@dataclass
class Measurement:
    """All runs of one method on one case."""

    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)  # this process + its children
    error: str | None = None
    note: str = ""
    frames: int | None = None
    first_offset: int | None = None  # clip's first picture vs the requested first frame
    last_offset: int | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def cpu_median(self) -> float | None:
        return statistics.median(self.cpu_seconds) if self.cpu_seconds else None


def cpu_now() -> float:
    """CPU seconds used so far by this process and its waited-for children (ffmpeg, smartcut)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m bench engine`."""
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="cache + results")
    parser.add_argument("--long-minutes", type=int, default=60, help="length of the long source")
    parser.add_argument(
        "--cases", default=",".join(c.key for c in CASES), help="comma-separated case keys"
    )
    parser.add_argument(
        "--methods", default=",".join(METHODS), help="comma-separated methods to run"
    )


def case_range(case: Case, source_seconds: int) -> tuple[float, float]:
    """(start, end) seconds: centred in the source, in-point half a second past a keyframe."""
    start = source_seconds / 2 - case.seconds / 2 + IN_POINT_AFTER_KEYFRAME_SECONDS
    return start, start + case.seconds


def requested_indices(start: float, end: float) -> tuple[int, int]:
    """(first, exclusive stop) source frame indices the product rule selects for [start, end)."""
    # Uses the rule's own implementation: the benchmark reports, the unit tests prove it.
    first = time_to_frame(start, RATE, start_timecode=None, origin=ZERO, field="start")
    stop = time_to_frame(end, RATE, start_timecode=None, origin=ZERO, field="end")
    return first, stop


def main(args: argparse.Namespace) -> int:
    """Generate or reuse the sources, time every method, print and save the table."""
    out_dir: Path = args.out_dir
    sources = media.ensure_sources(out_dir, long_minutes=args.long_minutes)
    video_args, audio_args, encoder_origin = methods.encoder_args(sources.short)
    runners: dict[str, methods.Method] = {
        "raw copy": methods.raw_copy,
        "raw re-encode": methods.make_raw_reencode(video_args, audio_args),
        "clipper exact": methods.make_clipper("exact"),
        "clipper fast": methods.make_clipper("fast"),
        "smartcut": methods.smartcut,
    }
    wanted_methods = [m for m in args.methods.split(",") if m in runners]
    cases = [c for c in CASES if c.key in args.cases.split(",")]
    clips_dir = out_dir / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[str, str], Measurement] = {}
    load_at_start, commit = os.getloadavg()[0], git_commit()
    for round_no in range(1, args.repeat + 1):
        for case in cases:
            src = sources.long if case.long_source else sources.short
            src_seconds = args.long_minutes * 60 if case.long_source else 60
            start, end = case_range(case, src_seconds)
            allowed = LONG_CASE_METHODS if case.key == "10s-long" else METHODS
            for name in (m for m in wanted_methods if m in allowed):
                m = results.setdefault((case.key, name), Measurement())
                if m.error is not None:
                    continue  # a method that failed once is not retried every round
                output = clips_dir / f"{case.key}-{name.replace(' ', '_')}.mp4"
                _run_once(
                    runners[name], m, src, output, start, end, f"[{round_no}] {case.key} {name}"
                )
    rows = _rows(cases, results, args.long_minutes * 60)
    loads = (load_at_start, os.getloadavg()[0])
    header = _header(commit, sources, args.repeat, encoder_origin, video_args + audio_args, loads)
    text = render(header, rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "engine.md").write_text(text)
    print(text)
    console.print(f"table written to {out_dir / 'engine.md'}")
    return 0


def _run_once(
    runner: methods.Method, m: Measurement, src: Path, output: Path, start: float, end: float,
    label: str,
) -> None:  # fmt: skip
    output.unlink(missing_ok=True)
    console.print(f"{label} ...", end="")
    began, cpu_began = time.perf_counter(), cpu_now()
    try:
        note = runner(src, output, start, end)
    except methods.Unavailable as exc:
        m.error = f"unavailable: {exc}"
    except Exception as exc:  # any failure goes in the table; the benchmark carries on
        m.error = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
    else:
        m.seconds.append(time.perf_counter() - began)
        # CPU time barely moves when other jobs share the machine; wall time does.
        m.cpu_seconds.append(cpu_now() - cpu_began)
        m.note = note
        if m.frames is None:
            _check_output(m, src, output, start, end)
    if m.error:
        console.print(f" {m.error}")
    else:
        console.print(f" {m.seconds[-1]:.2f} s (CPU {m.cpu_seconds[-1]:.2f} s)")


def _check_output(m: Measurement, src: Path, output: Path, start: float, end: float) -> None:
    """Frame count and first/last picture offsets: once per method, outside the timing."""
    first, stop = requested_indices(start, end)
    try:
        m.frames = methods.count_frames(output)
        m.first_offset, m.last_offset = frames.end_offsets(src, output, first, stop - 1, RATE)
    except Exception as exc:
        m.note = f"{m.note} (output check failed: {str(exc)[:120]})".strip()


def _rows(
    cases: list[Case], results: dict[tuple[str, str], Measurement], long_seconds: int
) -> list[Row]:
    rows: list[Row] = []
    for case in cases:
        src_seconds = long_seconds if case.long_source else 60
        start, end = case_range(case, src_seconds)
        first, stop = requested_indices(start, end)
        want = stop - first
        for name in METHODS:
            m = results.get((case.key, name))
            if m is None:
                continue
            base_key, base_label, target = _baseline(case, name)
            base = results.get(base_key) if base_key else None
            ratio = m.median / base.median if m.median and base and base.median else None
            cpu_ratio = None
            if m.cpu_median and base and base.cpu_median:
                cpu_ratio = m.cpu_median / base.cpu_median
            rows.append(
                Row(
                    clip=case.title, method=name, median=m.median, runs=len(m.seconds),
                    ratio=ratio, baseline=base_label, target=target,
                    cpu_median=m.cpu_median, cpu_ratio=cpu_ratio,
                    frames=m.frames, wanted_frames=want, note=m.error or m.note,
                    first_offset=m.first_offset, last_offset=m.last_offset,
                )
            )  # fmt: skip
    return rows


def _baseline(case: Case, name: str) -> tuple[tuple[str, str] | None, str, float | None]:
    """(measurement a row is compared with, its label, the product's target for the ratio)."""
    if case.key == "10s-long":
        # Cost follows the clip, not the source: same method, same clip, 1-min source.
        target = 1.3 if name.startswith("clipper") else None
        return ("10s", name), "same, 1-min source", target
    if name == "clipper exact":
        target = 0.6 if case.seconds <= 10 else 0.2
        return (case.key, "raw re-encode"), "raw re-encode", target
    if name == "clipper fast":
        return (case.key, "raw copy"), "raw copy", 2.0
    if name == "smartcut":
        return (case.key, "raw re-encode"), "raw re-encode", None
    return None, "", None


def git_commit() -> str:
    """Short hash of the checked-out commit (the engine code this run imported)."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "?"


def _header(
    commit: str,
    sources: media.Sources,
    repeat: int,
    encoder_origin: str,
    encoder_argv: list[str],
    loads: tuple[float, float],
) -> list[str]:
    return [
        f"Engine benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit {commit}, "
        f"{os.cpu_count()} CPUs, {methods.ffmpeg_version()}",
        f"Sources: 1080p30 H.264 High (x264 veryfast crf 20, 2 s GOP, 3 B-frames) + AAC; "
        f"1 min encoded from lavfi testsrc2+noise, {sources.long_minutes} min by stream-copy "
        "concatenation. Clips centred, in-point 0.55 s after a keyframe.",
        f"Median of {repeat} runs, methods interleaved per round. Raw re-encode settings: "
        f"`{' '.join(encoder_argv)}` ({encoder_origin}).",
        f"Load average (1 min) at start {loads[0]:.1f}, at end {loads[1]:.1f}: other work on "
        "the machine slows every method; compare ratios, not seconds. CPU columns (user+sys of "
        "the bench process and its children) hardly depend on that load.",
    ]
