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
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from bench import media, methods
from bench.http_burst import Answer, Connections, build_request
from bench.service_stack import CLIENT, ServiceStack
from clipper.storage import open_storage
from tests.fixtures.app import API_KEYS

HELP = "time the clip service (API + worker + Redis + S3): latency, dedup, 50-client bursts, bytes"
DEFAULT_OUT_DIR = Path(__file__).resolve().parent / "out"
SHORT_KEY, LONG_KEY = "bench/short.mp4", "bench/long.mp4"
CLIP_SECONDS = 10
GOP_SECONDS = 2
#: In-points half a second after a keyframe, as in the engine benchmark.
IN_POINT_AFTER_KEYFRAME_SECONDS = 0.55
POLL_INTERVAL_SECONDS = 0.02
CLIP_TIMEOUT_SECONDS = 300.0

PHASES = ("bytes", "latency", "existing", "bursts")
#: ministack keeps objects in memory and copies the whole rest of the object for every
#: open-ended `Range: bytes=N-` request (FFmpeg sends those): with the 60-minute source
#: (5.5 GB) it grew to 23.5 GB and was OOM-killed. 10 minutes (0.9 GB) is safe on 24 GB.
LONG_MINUTES = 10
MAX_LONG_MINUTES = 20

console = Console(stderr=True)
Row = tuple[str, str, str, str, str]  # metric, measured, target, met, note


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


class Starts:
    """Fresh in-points per source, two seconds (one GOP) apart, so no request is deduped."""

    def __init__(self, source_seconds: int) -> None:
        self._next = source_seconds / 2 - CLIP_SECONDS / 2 + IN_POINT_AFTER_KEYFRAME_SECONDS
        self._limit = source_seconds - CLIP_SECONDS

    def take(self) -> float:
        """The next unused in-point (wraps to the start of the source at the end)."""
        start = self._next
        self._next += GOP_SECONDS
        if self._next > self._limit:
            self._next = IN_POINT_AFTER_KEYFRAME_SECONDS + GOP_SECONDS
        return start


def clip_body(source: str, start: float, accuracy: str) -> dict[str, Any]:
    """A 10 s clip request."""
    return {
        "source": source,
        "start": round(start, 3),
        "end": round(start + CLIP_SECONDS, 3),
        "accuracy": accuracy,
    }


def submit_and_wait(
    stack: ServiceStack, body: dict[str, Any]
) -> tuple[float, float, dict[str, Any]]:
    """POST, then poll GET until the clip succeeded with a link: (seconds, POST seconds, clip)."""
    # The first POST for a source probes it before answering: long for a long source.
    with stack.client(timeout_seconds=CLIP_TIMEOUT_SECONDS) as client:
        began = time.perf_counter()
        response = client.post("/v1/clips", json=body)
        post_seconds = time.perf_counter() - began
        if response.status_code not in (200, 202):
            raise RuntimeError(f"submit answered {response.status_code}: {response.text}")
        resource: dict[str, Any] = response.json()
        deadline = began + CLIP_TIMEOUT_SECONDS
        while not (resource["status"] == "succeeded" and resource["result"]["download_url"]):
            if resource["status"] in ("failed", "canceled") or time.perf_counter() > deadline:
                raise RuntimeError(f"clip {resource['status']}: {resource}\n{stack.logs()}")
            time.sleep(POLL_INTERVAL_SECONDS)
            resource = client.get(f"/v1/clips/{resource['id']}").json()
        return time.perf_counter() - began, post_seconds, resource


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p99 of 50 values is the largest but none)."""
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


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


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


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
            _met(read <= limit),
            f"clip {clip / 1e6:.1f} MB, index {index / 1e6:.2f} MB, source "
            f"{path.stat().st_size / 1e9:.2f} GB, {conns} connections; POST answered in "
            f"{_ms(post_seconds)}",
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


def measure_existing(stack: ServiceStack, body: dict[str, Any], count: int) -> Row:
    """The identical request again, `count` times one after the other (dedup: 200)."""
    conns = _connections(stack, 1)
    token = API_KEYS[CLIENT]
    request = build_request(stack.api_url[7:], "POST", "/v1/clips", token, body)
    try:
        conns.burst([request] * 1)  # warm-up
        answers = [conns.burst([request])[0] for _ in range(count)]
    finally:
        conns.close()
    times = [a.seconds for a in answers]
    not_200 = sum(a.status != 200 for a in answers)
    p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
    return (
        "existing clip: identical POST again (answer time)",
        f"p50 {_ms(p50)} / p99 {_ms(p99)}",
        "< 50 ms",
        _met(p99 < 0.05 and not_200 == 0),
        f"{count} sequential requests, {not_200} not 200",
    )


def measure_bursts(
    stack: ServiceStack, clients: int, rounds: int, api_workers: list[int]
) -> list[Row]:
    """`rounds` bursts of `clients` simultaneous new submits (distinct frames), per API setup.

    Each setup also gets bursts of `GET /healthz` (no auth, no Redis, no S3): the floor any
    endpoint of this process can reach on this machine.
    """
    rows: list[Row] = []
    stack.stop_worker()  # the burst measures API + Redis; queued jobs just wait
    frames = iter(range(1, 10**9))

    def submits() -> list[bytes]:
        requests = []
        for _ in range(clients):
            # 1-frame steps: every request selects different frames (no dedup).
            start = 1 + (next(frames) % 1200) / media.FPS + 0.005
            body = clip_body(SHORT_KEY, start, "fast") | {"priority": "bulk"}
            requests.append(_request(stack, "POST", "/v1/clips", body))
        return requests

    def healthz() -> list[bytes]:
        return [_request(stack, "GET", "/healthz")] * clients

    for workers in api_workers:
        stack.start_api(workers=workers, s3_via_proxy=False)
        conns = _connections(stack, clients)
        try:
            for what, make, expected in (("GET /healthz", healthz, 200), ("submit", submits, 202)):
                cpu_before = stack.cpu_seconds()
                times, statuses = _bursts(conns, make, rounds, f"{what}, {workers} API processes")
                cpu = _cpu_per_request(cpu_before, stack.cpu_seconds(), (rounds + 1) * clients)
                p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
                floor = what != "submit"
                rows.append(
                    (
                        f"{'floor: ' if floor else ''}{what}, burst of {clients} simultaneous "
                        f"{'requests' if floor else 'new clips'}, "
                        f"`clipper api --workers {workers}`",
                        f"p50 {_ms(p50)} / p99 {_ms(p99)}",
                        "" if floor else "p99 < 50 ms",
                        "" if floor else _met(p99 < 0.05 and statuses == {expected}),
                        f"{rounds} bursts x {clients} after 1 warm-up burst; "
                        f"statuses {sorted(statuses)}; CPU per request {cpu}",
                    )
                )
        finally:
            conns.close()
    return rows


def _cpu_per_request(before: dict[str, float], after: dict[str, float], requests: int) -> str:
    """'API 4.1 ms, S3 1.2 ms, Redis 0.3 ms' (clock-tick resolution: 10 ms over all requests)."""
    return ", ".join(
        f"{name} {(after[name] - before[name]) / requests * 1000:.1f} ms"
        for name in ("api", "s3", "redis")
    )


def _bursts(
    conns: Connections, make: Callable[[], list[bytes]], rounds: int, label: str
) -> tuple[list[float], set[int]]:
    """Answer times and statuses of `rounds` bursts (after one warm-up burst, not counted)."""
    times: list[float] = []
    statuses: set[int] = set()
    for round_no in range(rounds + 1):
        answers: list[Answer] = conns.burst(make())
        time.sleep(0.5)  # let the API settle (logs, GC) between bursts
        if round_no == 0:
            continue  # the first burst warms the API processes (imports, pools, caches)
        batch = [a.seconds for a in answers]
        times += batch
        statuses |= {a.status for a in answers}
        console.print(
            f"burst {round_no} ({label}): p50 {_ms(percentile(batch, 0.5))}, max {_ms(max(batch))}"
        )
    return times, statuses


def _connections(stack: ServiceStack, count: int) -> Connections:
    host, port = stack.api_url[7:].split(":")
    return Connections(host, int(port), count)


def _request(stack: ServiceStack, method: str, path: str, body: Any = None) -> bytes:
    return build_request(stack.api_url[7:], method, path, API_KEYS[CLIENT], body)


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
