"""Cluster-wide metrics kept in Redis, written by workers and the API, exported by the API.

Why Redis and not prometheus_client's multiprocess mode: workers run on many machines and
RQ forks a short-lived work-horse per job, so a shared `PROMETHEUS_MULTIPROC_DIR` does not
exist and per-process registries die with the horse. Each event is a few HINCRBY /
HINCRBYFLOAT calls in one MULTI; the API's collector reads the hashes at scrape time.

Layout: hash `<prefix>counters` maps `name|label=value,…` to a number; hash `<prefix>hist`
holds histograms as `name|labels|le=<bound>` per-bucket (not cumulative) counts plus
`name|labels|sum` and `name|labels|count`. Recording never raises: metrics must not fail a clip.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq.worker import BaseWorker

from clipper.logs import log_state_change, redact

log = logging.getLogger(__name__)

#: Prefix of the metrics hashes (one place; next to the service's keys in spirit).
METRICS_KEY_PREFIX = "clipper:metrics:"
COUNTERS_KEY = METRICS_KEY_PREFIX + "counters"
HISTOGRAMS_KEY = METRICS_KEY_PREFIX + "hist"

#: Job wall-clock duration buckets, seconds (a copy takes ~0.1 s, a long re-encode minutes).
DURATION_BUCKETS_SECONDS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
#: Realtime-factor buckets: media seconds delivered per wall-clock second.
REALTIME_FACTOR_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 500.0)

#: Histogram name → its bucket upper bounds.
HISTOGRAM_BUCKETS: dict[str, tuple[float, ...]] = {
    "job_duration_seconds": DURATION_BUCKETS_SECONDS,
    "realtime_factor": REALTIME_FACTOR_BUCKETS,
}

Labels = tuple[tuple[str, str], ...]


def _field(name: str, labels: Mapping[str, str]) -> str:
    # "|", "," and "=" separate parts; label values are ours (statuses, codes), never user text.
    safe = {
        k: str(v).replace("|", "_").replace(",", "_").replace("=", "_") for k, v in labels.items()
    }
    return name + "|" + ",".join(f"{k}={v}" for k, v in sorted(safe.items()))


def _bucket_bound(value: float, bounds: Sequence[float]) -> str:
    for bound in bounds:
        if value <= bound:
            return repr(float(bound))
    return "+Inf"


def _safely(action: Callable[[], Any]) -> None:
    try:
        action()
    except RedisError as exc:  # a metrics outage must never fail a clip
        log.warning("metrics not recorded: %s", redact(str(exc)))


def inc(conn: Redis, name: str, amount: float = 1, **labels: str) -> None:
    """Add `amount` to counter `name{labels}`."""

    def run() -> None:
        if float(amount).is_integer():
            conn.hincrby(COUNTERS_KEY, _field(name, labels), int(amount))
        else:
            conn.hincrbyfloat(COUNTERS_KEY, _field(name, labels), float(amount))

    _safely(run)


def observe(conn: Redis, name: str, value: float, **labels: str) -> None:
    """Record one observation of histogram `name{labels}` (its buckets are HISTOGRAM_BUCKETS)."""
    if not math.isfinite(value):
        return
    base = _field(name, labels)

    def run() -> None:
        pipe = conn.pipeline(transaction=True)
        pipe.hincrby(
            HISTOGRAMS_KEY, f"{base}|le={_bucket_bound(value, HISTOGRAM_BUCKETS[name])}", 1
        )
        pipe.hincrbyfloat(HISTOGRAMS_KEY, f"{base}|sum", value)
        pipe.hincrby(HISTOGRAMS_KEY, f"{base}|count", 1)
        pipe.execute()

    _safely(run)


# --- the hooks the job code and the API call -------------------------------------------------


def record_state(conn: Redis, status: str, *, clip_id: str | None = None, **fields: Any) -> None:
    """Count a clip entering `status` (queued, running, succeeded, failed, canceled); with
    `clip_id`, also write the state-change log line (so the two never disagree)."""
    inc(conn, "clips_total", status=status)
    if clip_id is not None:
        # The RQ job id is the clip id (workers.queues.enqueue_clip).
        log_state_change(clip_id, status, job_id=clip_id, **fields)


def record_success(
    conn: Redis,
    *,
    strategy: str,
    wall_seconds: float,
    media_seconds: float,
    bytes_read: int = 0,
    bytes_written: int = 0,
) -> None:
    """Record a finished cut: strategy (copy/smart/reencode), duration, speed, bytes moved."""
    inc(conn, "clips_by_strategy_total", strategy=strategy)
    observe(conn, "job_duration_seconds", wall_seconds, outcome="succeeded")
    inc(conn, "media_seconds_total", media_seconds, strategy=strategy)
    inc(conn, "job_wall_seconds_total", wall_seconds, strategy=strategy)
    if wall_seconds > 0:
        observe(conn, "realtime_factor", media_seconds / wall_seconds, strategy=strategy)
    if bytes_read:
        inc(conn, "bytes_read_total", bytes_read)
    if bytes_written:
        inc(conn, "bytes_written_total", bytes_written)


def record_failure(conn: Redis, error_code: str, *, wall_seconds: float | None = None) -> None:
    """Count a failed clip by its error class (`ClipperError.code`, e.g. `invalid_media`)."""
    inc(conn, "failures_total", error=error_code)
    if wall_seconds is not None:
        observe(conn, "job_duration_seconds", wall_seconds, outcome="failed")


def record_dedup_hit(conn: Redis, kind: str = "existing") -> None:
    """Count a request answered by an existing clip (`existing`) or joined to one (`inflight`)."""
    inc(conn, "dedup_hits_total", kind=kind)


def record_link_issue(conn: Redis, reason: str) -> None:
    """Count a download-link problem: `expired`, `invalid_signature`, `signing_failed`, …"""
    inc(conn, "link_issues_total", reason=reason)


def process_read_bytes() -> int | None:
    """Bytes this process and its reaped children (ffmpeg, ffprobe) have read so far.

    Linux's `rchar` in /proc/self/io counts every read() (network and files) and folds a
    child's count into its parent when the child is reaped, so the difference around a job
    covers FFmpeg's range requests to storage. It also counts FFmpeg re-reading its own temp
    parts during a smart cut, so `bytes_read_total` is an upper bound. None off Linux.
    """
    try:
        with open("/proc/self/io", encoding="ascii") as io:
            for line in io:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def read_bytes_since(start: int | None) -> int:
    """Bytes read since `start` (a `process_read_bytes()` value); 0 when unknown."""
    now = process_read_bytes()
    return max(now - start, 0) if start is not None and now is not None else 0


# --- reading back (the API's collector) ------------------------------------------------------


@dataclass
class HistogramSnapshot:
    """One labelled histogram: cumulative buckets in Prometheus order, sum and count."""

    buckets: list[tuple[str, float]]
    sum: float
    count: float


@dataclass
class MetricsSnapshot:
    """Everything stored in Redis, parsed: counters and histograms keyed by (name, labels)."""

    counters: dict[str, dict[Labels, float]] = field(default_factory=lambda: defaultdict(dict))
    histograms: dict[str, dict[Labels, HistogramSnapshot]] = field(
        default_factory=lambda: defaultdict(dict)
    )


def _parse_field(raw: str) -> tuple[str, Labels, str]:
    name, _, rest = raw.partition("|")
    label_part, _, suffix = rest.partition("|")
    labels = tuple((k, v) for k, _, v in (p.partition("=") for p in label_part.split(",") if p))
    return name, labels, suffix


def parse_snapshot(counters: Mapping[str, str], histograms: Mapping[str, str]) -> MetricsSnapshot:
    """Turn the two raw Redis hashes into a MetricsSnapshot (pure)."""
    snap = MetricsSnapshot()
    for raw, value in counters.items():
        name, labels, _ = _parse_field(raw)
        snap.counters[name][labels] = float(value)
    parts: dict[tuple[str, Labels], dict[str, float]] = defaultdict(dict)
    for raw, value in histograms.items():
        name, labels, suffix = _parse_field(raw)
        parts[(name, labels)][suffix] = float(value)
    for (name, labels), values in parts.items():
        bounds = [repr(float(b)) for b in HISTOGRAM_BUCKETS.get(name, ())] + ["+Inf"]
        running = 0.0
        cumulative = []
        for bound in bounds:
            running += values.get(f"le={bound}", 0.0)
            cumulative.append((bound, running))
        snap.histograms[name][labels] = HistogramSnapshot(
            cumulative, values.get("sum", 0.0), values.get("count", running)
        )
    return snap


def read_snapshot(conn: Redis) -> MetricsSnapshot:
    """Read every stored metric from Redis (raises RedisError when Redis is down)."""
    pipe = conn.pipeline(transaction=False)
    pipe.hgetall(COUNTERS_KEY)
    pipe.hgetall(HISTOGRAMS_KEY)
    raw_counters, raw_hist = pipe.execute()

    def text(d: Mapping[Any, Any]) -> dict[str, str]:
        return {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in d.items()
        }

    return parse_snapshot(text(raw_counters), text(raw_hist))


# --- redaction of what RQ stores for a failed job ---------------------------------------------


class RedactingWorkerMixin(BaseWorker):
    """Worker mix-in that redacts the traceback RQ stores for a failed job.

    Use as `class ClipWorker(RedactingWorkerMixin, Worker)`: the dashboard and the admin API
    show that text, and FFmpeg's errors quote the signed input URL.
    """

    def handle_job_failure(self, job: Any, queue: Any, *args: Any, **kwargs: Any) -> None:
        """Store the failure like RQ does, with secrets removed from `exc_string`."""
        if "exc_string" in kwargs:
            kwargs["exc_string"] = redact(kwargs["exc_string"] or "")
        elif len(args) >= 2 and isinstance(args[1], str):
            args = (args[0], redact(args[1]), *args[2:])
        super().handle_job_failure(job, queue, *args, **kwargs)
