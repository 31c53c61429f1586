"""Service benchmark: the clip service end to end on real Redis, real S3 and real HTTP.

Starts its own stack (bench/service_stack.py), uploads the engine benchmark's 1080p sources
and measures what PRODUCT.md promises: submit-to-link latency against `clipper.engine.cut`
alone, the answer time for an existing clip, submit latency under a burst of 50 clients, and
the bytes a worker reads from storage for a 10 s clip. Timings are never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from bench import media, methods
from bench.service_common import (
    CLIP_SECONDS,
    LONG_KEY,
    POLL_INTERVAL_SECONDS,
    SHORT_KEY,
    Row,
    Starts,
    clip_body,
    console,
    met_text,
    ms_text,
    submit_and_wait,
)
from bench.service_load import measure_bursts, measure_existing
from bench.service_stack import ServiceStack
from clipper.storage import open_storage

HELP = "time the clip service (API + worker + Redis + S3): latency, dedup, 50-client bursts, bytes"
DEFAULT_OUT_DIR = Path(__file__).resolve().parent / "out"
PHASES = ("bytes", "latency", "existing", "bursts")
#: ministack keeps objects in memory and copies the whole rest of the object for every
#: open-ended `Range: bytes=N-` request (FFmpeg sends those): with the 60-minute source
#: (5.5 GB) it grew to 23.5 GB and was OOM-killed. 10 minutes (0.9 GB) is safe on 24 GB.
LONG_MINUTES = 10
MAX_LONG_MINUTES = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m bench service`."""
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="cache + results")
    parser.add_argument(
        "--long-minutes",
        type=int,
        default=LONG_MINUTES,
        help=f"long source minutes (ministack holds it in memory: at most {MAX_LONG_MINUTES})",
    )
    parser.add_argument("--repeat", type=int, default=3, help="clips per latency measurement")
    parser.add_argument("--existing", type=int, default=50, help="requests for an existing clip")
    parser.add_argument("--clients", type=int, default=50, help="simultaneous submits per burst")
    parser.add_argument("--rounds", type=int, default=5, help="bursts per API configuration")
    parser.add_argument(
        "--api-workers", default="1,2", help="uvicorn process counts to burst against"
    )
    parser.add_argument(
        "--phases", default=",".join(PHASES), help="comma-separated subset of " + ",".join(PHASES)
    )


def moov_bytes(path: Path) -> int:
    """Size of the MP4 index (top-level `moov` box): what any reader must fetch once."""
    with path.open("rb") as f:
        while header := f.read(8):
            size, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if size == 1:
                size = int.from_bytes(f.read(8), "big")
                f.seek(size - 16, os.SEEK_CUR)
            else:
                f.seek(size - 8, os.SEEK_CUR)
            if kind == b"moov":
                return size
    raise ValueError(f"no moov box in {path}")


def measure_bytes(
    stack: ServiceStack, key: str, path: Path, starts: Starts, label: str
) -> Iterator[Row]:
    """Bytes through the proxy for 10 s clips: exact (probe included, then cached), fast."""
    assert stack.proxy is not None
    index = moov_bytes(path)
    cases = (
        ("exact", "first clip of the source (the API probes it)"),
        ("exact", "probe cached"),
        ("fast", "probe cached"),
    )
    for accuracy, which in cases:
        stack.proxy.reset()
        _, post_seconds, resource = submit_and_wait(stack, clip_body(key, starts.take(), accuracy))
        read, conns = stack.proxy.bytes_to_client, stack.proxy.connections
        clip = int(resource["result"]["size_bytes"])
        limit = 2 * (clip + index)
        console.print(f"bytes {label} {accuracy} {which}: {read} read, clip {clip}, index {index}")
        yield (
            f"bytes read, 10 s `{accuracy}` from the {label}, {which}",
            f"{read / 1e6:.1f} MB ({read / (clip + index):.2f} x (clip + index))",
            f"≤ {limit / 1e6:.1f} MB",
            met_text(read <= limit),
            f"clip {clip / 1e6:.1f} MB, index {index / 1e6:.2f} MB, source "
            f"{path.stat().st_size / 1e9:.2f} GB, {conns} connections; POST answered in "
            f"{ms_text(post_seconds)}",
        )
    yield raw_copy_bytes(stack, key, starts.take(), label)


def raw_copy_bytes(stack: ServiceStack, key: str, start: float, label: str) -> Row:
    """Baseline: plain `ffmpeg -ss -i <signed URL> -t 10 -c copy`, counted by the same proxy."""
    assert stack.proxy is not None
    url = open_storage(stack.settings).source_input_url(key, ttl_seconds=600)
    out = stack.root / "raw-copy.mp4"
    stack.proxy.reset()
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", f"{start:.3f}", "-i", url]
    subprocess.run([*argv, "-t", str(CLIP_SECONDS), "-c", "copy", str(out)], check=True)
    read, conns = stack.proxy.bytes_to_client, stack.proxy.connections
    size = out.stat().st_size
    return (
        f"bytes read, raw `ffmpeg -ss -i URL -t 10 -c copy` from the {label} (baseline)",
        f"{read / 1e6:.1f} MB ({read / size:.2f} x output)",
        "",
        "",
        f"output {size / 1e6:.1f} MB, {conns} connections; same proxy, same counting",
    )


def measure_latency(stack: ServiceStack, source: Path, starts: Starts, repeat: int) -> list[Row]:
    """Submit-to-link vs `engine.cut` alone on the local file, same ranges, interleaved."""
    rows: list[Row] = []
    out = stack.root / "engine-alone.mp4"
    for accuracy in ("fast", "exact"):
        service, alone, waits, jobs = [], [], [], []
        runner = methods.make_clipper(accuracy)
        for rep in range(repeat):
            start = starts.take()
            seconds, _, clip = submit_and_wait(stack, clip_body(SHORT_KEY, start, accuracy))
            service.append(seconds)
            waits.append(_between(clip["created_at"], clip["started_at"]))
            jobs.append(_between(clip["started_at"], clip["finished_at"]))
            out.unlink(missing_ok=True)
            began = time.perf_counter()
            runner(source, out, start, start + CLIP_SECONDS)
            alone.append(time.perf_counter() - began)
            console.print(
                f"[{rep + 1}] {accuracy}: service {seconds:.2f} s, engine {alone[-1]:.2f} s"
            )
        s, e = statistics.median(service), statistics.median(alone)
        rows.append(
            (
                f"submit → link, 10 s `{accuracy}` (1-min source)",
                f"{s:.2f} s ({s / e:.2f} x engine alone)",
                "",
                "",
                f"engine.cut alone on the local file {e:.2f} s; overhead {s - e:+.2f} s; "
                f"record: queued → started {statistics.median(waits):.2f} s, started → "
                f"finished {statistics.median(jobs):.2f} s (job incl. upload); median of {repeat}",
            )
        )
    return rows


def _between(earlier: str, later: str) -> float:
    """Seconds between two ISO 8601 timestamps of a clip record."""
    return (dt.datetime.fromisoformat(later) - dt.datetime.fromisoformat(earlier)).total_seconds()


def render(header: list[str], rows: list[Row]) -> str:
    """Header lines and one Markdown table."""
    lines = [
        *header,
        "",
        "| measurement | measured | target | met | note |",
        "|---|---|---|:---:|---|",
    ]
    lines += [f"| {' | '.join(cell.replace('|', '/') for cell in row)} |" for row in rows]
    return "\n".join(lines) + "\n"


def _header(load_start: float, long_minutes: int) -> list[str]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return [
        f"Service benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit {commit or '?'}, "
        f"{os.cpu_count()} CPUs, {methods.ffmpeg_version()}",
        "Stack on 127.0.0.1: redis-server, ministack S3 (signature checks), `clipper api` and one "
        "`clipper worker` as subprocesses; they reach S3 through a byte-counting proxy for the "
        "bytes rows, directly for the rest. Sources: the engine "
        f"benchmark's 1080p30 H.264 files (1 min, {long_minutes} min). Latency = POST to a GET "
        f"showing `download_url` (polled every {POLL_INTERVAL_SECONDS * 1000:.0f} ms); bursts are "
        "sent over pre-opened keep-alive connections with pre-built requests, the worker stopped.",
        f"Load average (1 min) at start {load_start:.1f}, at end {os.getloadavg()[0]:.1f}.",
    ]


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(args: argparse.Namespace) -> int:
    """Start the stack, measure, print and save the table; stop everything."""
    signal.signal(signal.SIGTERM, _raise_interrupt)  # SIGTERM cleans up like Ctrl-C
    if args.long_minutes > MAX_LONG_MINUTES:
        console.print(
            f"--long-minutes {args.long_minutes}: at most {MAX_LONG_MINUTES} (see LONG_MINUTES)"
        )
        return 2
    sources = media.ensure_sources(args.out_dir, long_minutes=args.long_minutes)
    load_start = os.getloadavg()[0]
    phases = set(args.phases.split(","))
    rows: list[Row] = []
    with ServiceStack() as stack:
        storage = open_storage(stack.direct_settings)
        uploads = [(SHORT_KEY, sources.short)]
        if "bytes" in phases:
            uploads.append((LONG_KEY, sources.long))
        for key, path in uploads:
            began = time.perf_counter()
            storage.put_source(key, path)
            console.print(f"uploaded {path.name} in {time.perf_counter() - began:.1f} s")
        short_starts, long_starts = Starts(60), Starts(args.long_minutes * 60)
        if "bytes" in phases:
            rows += measure_bytes(stack, SHORT_KEY, sources.short, short_starts, "1-min source")
            rows += measure_bytes(
                stack, LONG_KEY, sources.long, long_starts, f"{args.long_minutes}-min source"
            )
        # From here on, API and worker talk to S3 directly: the proxy would slow every call.
        stack.start_api(workers=1, s3_via_proxy=False)
        stack.stop_worker()
        stack.start_worker(s3_via_proxy=False)
        if "latency" in phases:
            rows += measure_latency(stack, sources.short, short_starts, args.repeat)
        if "existing" in phases:
            existing = clip_body(SHORT_KEY, short_starts.take(), "fast")
            submit_and_wait(stack, existing)
            rows.append(measure_existing(stack, existing, args.existing))
        if "bursts" in phases:
            workers = [int(n) for n in args.api_workers.split(",") if n.strip()]
            rows += measure_bursts(stack, args.clients, args.rounds, workers)
    text = render(_header(load_start, args.long_minutes), rows)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "service.md").write_text(text)
    print(text)
    console.print(f"table written to {args.out_dir / 'service.md'}")
    return 0
