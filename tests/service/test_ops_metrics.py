"""Redis-backed metrics: hooks write, the collector exports, Prometheus text parses back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue

from api.ops.metrics import ClipperCollector
from tests.fixtures.services import free_port
from workers import metrics
from workers.metrics import (
    COUNTERS_KEY,
    DURATION_BUCKETS_SECONDS,
    parse_snapshot,
    read_snapshot,
)


@pytest.fixture
def conn(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


def _scrape(
    conn: Redis, queues: tuple[str, ...] = ("interactive", "default", "bulk")
) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(ClipperCollector(conn, queues))
    text = generate_latest(registry).decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}"] = s.value
    return samples


def test_hooks_reach_the_exported_text(conn: Redis) -> None:
    metrics.record_state(conn, "queued")
    metrics.record_state(conn, "queued")
    metrics.record_state(conn, "running")
    metrics.record_success(
        conn, strategy="smart", wall_seconds=2.0, media_seconds=10.0, bytes_written=1500
    )
    metrics.record_failure(conn, "invalid_media", wall_seconds=0.3)
    metrics.record_dedup_hit(conn, "existing")
    metrics.record_link_issue(conn, "expired")

    s = _scrape(conn)
    assert s["clipper_redis_up{}"] == 1
    assert s["clipper_clips_total{status=queued}"] == 2
    assert s["clipper_clips_total{status=running}"] == 1
    assert s["clipper_clips_by_strategy_total{strategy=smart}"] == 1
    assert s["clipper_bytes_written_total{}"] == 1500
    assert s["clipper_failures_total{error=invalid_media}"] == 1
    assert s["clipper_dedup_hits_total{kind=existing}"] == 1
    assert s["clipper_link_issues_total{reason=expired}"] == 1
    # 10 media seconds in 2 wall seconds: one observation of 5.0, counted in le=5.0 and up.
    assert s["clipper_realtime_factor_count{strategy=smart}"] == 1
    assert s["clipper_realtime_factor_sum{strategy=smart}"] == 5.0
    assert s["clipper_realtime_factor_bucket{le=2.0,strategy=smart}"] == 0
    assert s["clipper_realtime_factor_bucket{le=5.0,strategy=smart}"] == 1
    assert s["clipper_realtime_factor_bucket{le=+Inf,strategy=smart}"] == 1
    assert s["clipper_job_duration_seconds_count{outcome=failed}"] == 1
    assert s["clipper_job_duration_seconds_bucket{le=0.25,outcome=failed}"] == 0
    assert s["clipper_job_duration_seconds_bucket{le=0.5,outcome=failed}"] == 1


def test_queue_depth_and_registries_are_read_at_scrape_time(conn: Redis) -> None:
    q = Queue("bulk", connection=conn)
    for _ in range(3):
        q.enqueue("os.getcwd")
    s = _scrape(conn)
    assert s["clipper_queue_depth{queue=bulk}"] == 3
    assert s["clipper_queue_depth{queue=interactive}"] == 0
    assert s["clipper_queue_jobs{queue=bulk,state=failed}"] == 0
    assert s["clipper_workers{}"] == 0


def test_counters_survive_many_writers(conn: Redis, redis_url: str) -> None:
    # Separate connections stand in for workers on other machines.
    writers = [Redis.from_url(redis_url) for _ in range(4)]
    for _ in range(25):
        for w in writers:
            metrics.record_state(w, "succeeded")
    assert read_snapshot(conn).counters["clips_total"][(("status", "succeeded"),)] == 100


def test_recording_never_raises_when_redis_is_gone() -> None:
    dead = Redis(
        host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    metrics.record_state(dead, "queued")
    metrics.record_success(dead, strategy="copy", wall_seconds=1, media_seconds=1)


def test_scrape_without_redis_reports_down_instead_of_failing() -> None:
    dead = Redis(
        host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    s = _scrape(dead)
    assert s == {"clipper_redis_up{}": 0.0}


def test_parse_snapshot_cumulates_buckets() -> None:
    b = [repr(float(x)) for x in DURATION_BUCKETS_SECONDS]
    raw = {
        f"job_duration_seconds|outcome=succeeded|le={b[0]}": "2",
        f"job_duration_seconds|outcome=succeeded|le={b[3]}": "1",
        "job_duration_seconds|outcome=succeeded|le=+Inf": "1",
        "job_duration_seconds|outcome=succeeded|sum": "1000.5",
        "job_duration_seconds|outcome=succeeded|count": "4",
    }
    hist = parse_snapshot({}, raw).histograms["job_duration_seconds"][(("outcome", "succeeded"),)]
    counts = dict(hist.buckets)
    assert counts[b[0]] == 2
    assert counts[b[2]] == 2
    assert counts[b[3]] == 3
    assert counts["+Inf"] == 4
    assert hist.count == 4
    assert hist.sum == 1000.5


def test_label_values_cannot_break_the_field_format(conn: Redis) -> None:
    metrics.record_failure(conn, "odd|code,x=y")
    fields = [f.decode() for f in conn.hkeys(COUNTERS_KEY)]
    assert fields == ["failures_total|error=odd_code_x_y"]


def test_process_read_bytes_counts_reaped_children(tmp_path: Path) -> None:
    data = tmp_path / "blob.bin"
    data.write_bytes(b"x" * 3_000_000)
    start = metrics.process_read_bytes()
    assert start is not None
    subprocess.run(["cat", str(data)], stdout=subprocess.DEVNULL, check=True)
    assert 3_000_000 <= metrics.read_bytes_since(start) < 3_500_000
    assert metrics.read_bytes_since(None) == 0
