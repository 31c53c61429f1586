"""Ops on the running stack (`clipper api` + `clipper worker` subprocesses, real Redis):
metrics move as a clip is made, state changes are JSON log lines, readiness follows Redis."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import httpx
import pytest

from clipper.settings import DEVELOPMENT_ADMIN_KEYS
from tests.fixtures.app import ServiceStack, upload_source
from tests.fixtures.services import RedisServer

pytestmark = pytest.mark.slow

ADMIN_NAME, ADMIN_KEY = DEVELOPMENT_ADMIN_KEYS.split(":")
_SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def scrape(stack: ServiceStack) -> dict[str, float]:
    """`/metrics` as {'name{labels}': value}; labels kept in the order exported."""
    response = httpx.get(f"{stack.api_url}/metrics", timeout=10)
    assert response.status_code == 200
    out: dict[str, float] = {}
    for line in response.text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            key = match["name"] + (f"{{{match['labels']}}}" if match["labels"] else "")
            out[key] = float(match["value"])
    return out


def total(samples: dict[str, float], prefix: str) -> float:
    """Sum of every sample whose key starts with `prefix`."""
    return sum(v for k, v in samples.items() if k.startswith(prefix))


def state_lines(text: str, clip_id: str) -> list[dict[str, Any]]:
    """The JSON state-change lines of one clip in a log."""
    lines = []
    for raw in text.splitlines():
        if raw.startswith("{") and clip_id in raw:
            entry = json.loads(raw)
            if entry.get("event") == "clip.state":
                lines.append(entry)
    return lines


def test_metrics_and_logs_follow_a_clip(
    local_clip_stack: ServiceStack, media_h264_mp4: Any
) -> None:
    stack = local_clip_stack
    key = f"ops/{uuid.uuid4().hex[:8]}/talk.mp4"
    upload_source(stack.settings, key, media_h264_mp4.path)
    before = scrape(stack)
    client = stack.client("alice")
    submitted = client.post("/v1/clips", json={"source": key, "start": 1.0, "end": 3.0})
    assert submitted.status_code == 202, submitted.text
    clip_id = submitted.json()["id"]
    clip = stack.wait_for(client, clip_id)
    assert clip["status"] == "succeeded", stack.logs()
    after = scrape(stack)

    def delta(prefix: str) -> float:
        return total(after, prefix) - total(before, prefix)

    assert after["clipper_redis_up"] == 1
    assert after["clipper_workers"] >= 1
    assert delta('clipper_clips_total{status="queued"}') == 1
    assert delta('clipper_clips_total{status="running"}') == 1
    assert delta('clipper_clips_total{status="succeeded"}') == 1
    strategy = clip["result"]["accuracy"]["strategy"]
    assert delta(f'clipper_clips_by_strategy_total{{strategy="{strategy}"}}') == 1
    assert delta('clipper_job_duration_seconds_count{outcome="succeeded"}') == 1
    assert delta(f'clipper_realtime_factor_count{{strategy="{strategy}"}}') == 1
    assert delta("clipper_bytes_written_total") == clip["result"]["size_bytes"]
    # Reads of the job's process tree: probe, cut parts and verification passes over a
    # 5 s source; far from the source being read dozens of times.
    source_bytes = media_h264_mp4.path.stat().st_size
    assert source_bytes < delta("clipper_bytes_read_total") < 25 * source_bytes
    assert after['clipper_queue_depth{queue="default"}'] == 0

    # One JSON line per state change: queued by the API, running/succeeded by the worker.
    api_log = (stack.log_dir / "api.log").read_text()
    worker_log = (stack.log_dir / "worker.log").read_text()
    assert [e["status"] for e in state_lines(api_log, clip_id)] == ["queued"]
    worker_states = [e["status"] for e in state_lines(worker_log, clip_id)]
    assert worker_states == ["running", "succeeded"]
    entry = state_lines(worker_log, clip_id)[-1]
    assert entry["clip_id"] == clip_id and entry["job_id"] == clip_id
    assert entry["level"] == "INFO" and entry["ts"]
    # Every worker line is structured (RQ's own lines included) and carries no API key.
    for raw in worker_log.splitlines():
        if raw.strip():
            json.loads(raw)
    assert "alice-key-0123456789" not in api_log + worker_log


def test_dashboard_and_admin_behind_auth_on_the_stack(local_clip_stack: ServiceStack) -> None:
    base = local_clip_stack.api_url
    assert httpx.get(f"{base}/dashboard/").status_code == 401
    queues = httpx.get(f"{base}/dashboard/0/data/queues.json", auth=(ADMIN_NAME, ADMIN_KEY))
    assert queues.status_code == 200
    assert "default" in {q["name"] for q in queues.json()["queues"]}
    admin = httpx.get(
        f"{base}/v1/admin/jobs?state=succeeded", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert admin.status_code == 200
    assert all(j["state"] == "succeeded" for j in admin.json()["jobs"])


def test_readyz_turns_503_when_redis_stops(
    local_clip_stack: ServiceStack, redis_server: RedisServer
) -> None:
    base = local_clip_stack.api_url
    ready = httpx.get(f"{base}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    redis_server.stop()
    try:
        started = time.monotonic()
        down = httpx.get(f"{base}/readyz", timeout=10)
        elapsed = time.monotonic() - started
        assert down.status_code == 503
        assert down.json()["components"]["redis"]["ready"] is False
        assert down.json()["components"]["ffmpeg"]["ready"] is True
        assert elapsed < 3.0
        assert scrape(local_clip_stack)["clipper_redis_up"] == 0
        assert httpx.get(f"{base}/healthz").status_code == 200
    finally:
        redis_server.start()
    deadline = time.monotonic() + 10
    while httpx.get(f"{base}/readyz", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "not ready again after Redis came back"
        time.sleep(0.2)
