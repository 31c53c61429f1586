"""Lost jobs on real Redis: what RQ's abandoned-job path and the work-horse-killed handler do to
the clip record, its webhook and what the dead attempt left; the scheduler's short lock; the
work folders' liveness lock.

A dead worker is made the way it looks in Redis: the job STARTED with an execution in the
started registry whose heartbeat lapsed, and nobody refreshing it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq.executions import Execution
from rq.job import JobStatus
from rq.utils import now

from clipper.settings import Settings, get_settings
from clipper.storage import open_storage
from tests.fixtures.app import api_keys_setting, settings_env, upload_source
from tests.fixtures.services import local_settings
from workers import metrics, records
from workers.queues import ALL_QUEUE_NAMES, fetch_job, redis_connection
from workers.submit import ClipOrder, ClipRequest, Queued, SubmitContext, SubmitMode, submit
from workers.worker import recovery, workdirs
from workers.worker.process import build_worker
from workers.worker.scheduler import LOCK_TTL_SECONDS, REACQUIRE_SECONDS


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path
) -> Iterator[Settings]:
    """Local storage settings, exported as CLIPPER_* (the RQ callback reads them)."""
    settings = local_settings(
        tmp_path / "storage", redis_url=redis_url, api_keys=api_keys_setting(),
        work_dir=tmp_path / "work", webhook_allow_private=True,
    )  # fmt: skip
    open_storage(settings).ensure_buckets()
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def _queued_clip(settings: Settings, media: Any, **request: Any) -> str:
    key = f"lost/{uuid.uuid4().hex[:8]}.mp4"
    upload_source(settings, key, media.path)
    ctx = SubmitContext(redis_connection(settings), open_storage(settings), settings)
    order = ClipOrder("alice", ClipRequest(source=key, start=1, end=2, **request))
    result = submit(ctx, order, mode=SubmitMode.THREAD)
    assert isinstance(result, Queued)
    return result.record.id


def _abandon(conn: Redis, clip_id: str, *, retries_left: int | None = None) -> None:
    """Make the job look like its worker died mid-run a few seconds ago."""
    job = fetch_job(conn, clip_id)
    assert job is not None
    if retries_left is not None:
        job.retries_left = retries_left
        job.save()
    queue_key = f"rq:queue:{job.origin}"
    conn.lrem(queue_key, 0, job.id)
    with conn.pipeline() as pipe:
        job.prepare_for_execution("dead-worker", pipeline=pipe)
        Execution.create(job, ttl=1, pipeline=pipe, worker_name="dead-worker")
        pipe.execute()
    records.update_if_status(conn, clip_id, ("queued",), status="running")
    time.sleep(2.1)  # the execution's heartbeat has lapsed (scores are whole seconds)


def test_abandoned_job_is_requeued_with_a_classified_reason(
    env: Settings, media_h264_mp4: Any
) -> None:
    conn = Redis.from_url(env.redis_url)
    clip_id = _queued_clip(env, media_h264_mp4)
    _abandon(conn, clip_id)
    leftover = env.work_dir / f"clipper-{clip_id}-dead1"  # type: ignore[operator]
    leftover.mkdir(parents=True)
    (leftover / "part-000.ts").write_bytes(b"x" * 100)

    build_worker(env).clean_registries()  # one maintenance pass of a surviving worker

    record = records.load(conn, clip_id)
    assert record is not None and record.status == "queued"
    assert record.error["code"] == recovery.WORKER_LOST and record.error["retrying"] is True
    job = fetch_job(conn, clip_id)
    assert job is not None and job.get_status(refresh=True) == JobStatus.SCHEDULED
    assert not leftover.exists()  # same host: the dead attempt's folder went too


def test_abandoned_job_without_retries_fails_and_sends_its_webhook(
    env: Settings, media_h264_mp4: Any
) -> None:
    conn = Redis.from_url(env.redis_url)
    clip_id = _queued_clip(env, media_h264_mp4, callback_url="http://127.0.0.1:9/hook")
    _abandon(conn, clip_id, retries_left=0)

    build_worker(env).clean_registries()

    record = records.load(conn, clip_id)
    assert record is not None and record.status == "failed"
    assert record.error["code"] == recovery.WORKER_LOST and "retrying" not in record.error
    assert record.finished_at
    job = fetch_job(conn, clip_id)
    assert job is not None and job.get_status(refresh=True) == JobStatus.FAILED
    hooks = [j for j in _webhook_jobs(conn) if j.func_name == "workers.webhooks.deliver"]
    assert [h.args for h in hooks] == [[clip_id, hooks[0].args[1], "clip.failed"]]
    counters = metrics.read_snapshot(conn).counters["failures_total"]
    assert counters[(("error", recovery.WORKER_LOST),)] == 1


def _webhook_jobs(conn: Redis) -> list[Any]:
    from workers.queues import WEBHOOK_QUEUE, get_queue

    return get_queue(WEBHOOK_QUEUE, conn).get_jobs()


def test_killed_horse_handler_requeues_or_fails(env: Settings, media_h264_mp4: Any) -> None:
    conn = Redis.from_url(env.redis_url)
    clip_id = _queued_clip(env, media_h264_mp4)
    records.update_if_status(conn, clip_id, ("queued",), status="running")
    job = fetch_job(conn, clip_id)
    assert job is not None
    recovery.horse_killed(env, job, signal.SIGKILL)  # waitpid status of a SIGKILLed child
    record = records.load(conn, clip_id)
    assert record is not None and record.status == "queued"
    assert "signal 9" in record.error["message"]

    records.update_if_status(conn, clip_id, ("queued",), status="running")
    job.retries_left = 0
    recovery.horse_killed(env, job, signal.SIGKILL)
    record = records.load(conn, clip_id)
    assert record is not None and record.status == "failed"

    # A clip already final (canceled, say) stays as it is.
    recovery.horse_killed(env, job, signal.SIGKILL)
    again = records.load(conn, clip_id)
    assert again is not None and again.status == "failed" and again.updated_at == record.updated_at


def test_scheduler_lock_is_short_and_taken_over(env: Settings) -> None:
    conn = Redis.from_url(env.redis_url)
    worker = build_worker(env)
    worker._start_scheduler(burst=False)
    try:
        assert worker.scheduler is not None and worker.scheduler.acquired_locks
        ttl = conn.ttl("rq:scheduler-lock:default")
        assert 0 < ttl <= LOCK_TTL_SECONDS
    finally:
        worker.stop_scheduler()
    # A dead scheduler's lock on one queue: a running scheduler takes it once it expires.
    conn.set("rq:scheduler-lock:default", "dead-scheduler", ex=1)
    other = build_worker(env)
    other._start_scheduler(burst=False)
    scheduler = other.scheduler
    assert scheduler is not None
    try:
        assert "default" not in scheduler.acquired_locks
        deadline = time.monotonic() + REACQUIRE_SECONDS + 5
        while conn.get("rq:scheduler-lock:default") != scheduler.name.encode():
            assert time.monotonic() < deadline, conn.get("rq:scheduler-lock:default")
            time.sleep(0.2)
    finally:
        other.stop_scheduler()
    # A worker whose scheduler holds nothing tries again at each maintenance pass.
    for name in ALL_QUEUE_NAMES:  # the clip queues and `webhooks`
        conn.set(f"rq:scheduler-lock:{name}", "dead-scheduler", ex=1)
    third = build_worker(env)
    third._start_scheduler(burst=False)
    assert third.scheduler is not None and not third.scheduler.acquired_locks
    time.sleep(1.5)
    third.last_cleaned_at = now() - timedelta(seconds=60)  # not the first pass: restarts too
    third.run_maintenance_tasks()
    try:
        assert conn.get("rq:scheduler-lock:bulk") == third.scheduler.name.encode()
    finally:
        third.stop_scheduler()


def test_sweep_keeps_live_folders_and_removes_dead_ones(tmp_path: Path) -> None:
    clip_id = records.new_clip_id()
    script = (
        "import sys, time; from pathlib import Path; "
        "from workers.worker.workdirs import job_work_dir\n"
        f"with job_work_dir(Path({str(tmp_path)!r}), {clip_id!r}) as d:\n"
        "    (d / 'part.ts').write_bytes(b'x'); print(d, flush=True); time.sleep(60)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        assert owner.stdout is not None
        live = Path(owner.stdout.readline().strip())
        stale_new = tmp_path / f"{workdirs.NEW_DIR_PREFIX}abc"
        stale_new.mkdir()
        unrelated = tmp_path / "someone-elses"
        unrelated.mkdir()
        assert workdirs.sweep(tmp_path) == [stale_new]  # the live job's folder stays
        assert live.exists()
        os.kill(owner.pid, signal.SIGKILL)  # no `finally` runs: the folder is left behind
        owner.wait()
        assert live.exists()
        assert workdirs.sweep(tmp_path, clip_id) == [live]
        assert sorted(p.name for p in tmp_path.iterdir()) == [unrelated.name]
    finally:
        if owner.poll() is None:
            owner.kill()
