"""The clip job's failure policy, run in-process by RQ's SimpleWorker on real Redis and S3.

Transient trouble (storage unreachable) goes back to the queue for a retry with back-off;
a request that cannot succeed (the source changed under its ETag) fails once, for good.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from clipper.settings import Settings, get_settings
from clipper.storage import open_storage
from tests.fixtures.app import api_keys_setting, settings_env, upload_source
from tests.fixtures.services import s3_settings
from workers import records
from workers.queues import QUEUE_NAMES, fetch_job, get_queues, redis_connection
from workers.submit import ClipOrder, ClipRequest, Queued, SubmitContext, SubmitMode, submit


@pytest.fixture
def worker_env(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, s3_server: Any, s3_proxy: Any, tmp_path: Path
) -> Iterator[Settings]:
    """Settings (S3 through a stoppable proxy) exported as the job's CLIPPER_* environment."""
    settings = s3_settings(
        s3_server,
        redis_url=redis_url,
        s3_endpoint=s3_proxy.endpoint,
        api_keys=api_keys_setting(),
        work_dir=tmp_path / "work",
    )
    open_storage(settings).ensure_buckets()
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def _submit(settings: Settings, source_key: str) -> str:
    ctx = SubmitContext(redis_connection(settings), open_storage(settings), settings)
    request = ClipRequest(source=source_key, start=1, end=2, accuracy="fast")
    result = submit(ctx, ClipOrder("alice", request), mode=SubmitMode.THREAD)
    assert isinstance(result, Queued)
    assert result.status_code == 202
    return result.record.id


def _work(settings: Settings) -> None:
    conn = Redis.from_url(settings.redis_url)
    worker = SimpleWorker(get_queues(QUEUE_NAMES, conn), connection=conn, serializer=JSONSerializer)
    worker.work(burst=True)


def test_storage_outage_is_retried(
    worker_env: Settings, s3_proxy: Any, media_h264_mp4: Any
) -> None:
    key = f"retry/{uuid.uuid4().hex[:8]}.mp4"
    upload_source(worker_env, key, media_h264_mp4.path)
    clip_id = _submit(worker_env, key)
    s3_proxy.stop()
    _work(worker_env)
    conn = Redis.from_url(worker_env.redis_url)
    record = records.load(conn, clip_id)
    assert record is not None
    assert record.status == "queued"  # back in line, not failed
    assert record.error["retrying"] is True
    assert record.progress["phase"] == "waiting_retry"
    job = fetch_job(conn, clip_id)
    assert job is not None
    assert job.get_status(refresh=True) == "scheduled"  # after the first back-off interval
    assert job.retries_left is not None and job.retries_left > 0


def test_changed_source_fails_without_retry(
    worker_env: Settings, media_h264_mp4: Any, media_h264_faststart_mp4: Any
) -> None:
    key = f"changed/{uuid.uuid4().hex[:8]}.mp4"
    upload_source(worker_env, key, media_h264_mp4.path)
    clip_id = _submit(worker_env, key)
    upload_source(worker_env, key, media_h264_faststart_mp4.path)  # new bytes, new ETag
    _work(worker_env)
    conn = Redis.from_url(worker_env.redis_url)
    record = records.load(conn, clip_id)
    assert record is not None
    assert record.status == "failed"
    assert record.error["field"] == "source"
    assert record.error["code"] == "source_changed"
    job = fetch_job(conn, clip_id)
    assert job is not None
    assert job.get_status(refresh=True) == "failed"
    assert not job.retries_left


def test_source_replaced_during_the_cut_is_never_uploaded(
    worker_env: Settings,
    media_h264_mp4: Any,
    media_h264_faststart_mp4: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ETag is checked again after the cut: bytes cut while the source was being replaced
    may mix both versions. The real engine runs; the replacement is made to land right after
    it, which is the race made deterministic."""
    from clipper import engine

    key = f"midcut/{uuid.uuid4().hex[:8]}.mp4"
    upload_source(worker_env, key, media_h264_mp4.path)
    clip_id = _submit(worker_env, key)
    real_cut = engine.cut

    def cut_then_replace(*args: Any, **kwargs: Any) -> Any:
        report = real_cut(*args, **kwargs)
        upload_source(worker_env, key, media_h264_faststart_mp4.path)
        return report

    monkeypatch.setattr(engine, "cut", cut_then_replace)
    _work(worker_env)
    conn = Redis.from_url(worker_env.redis_url)
    record = records.load(conn, clip_id)
    assert record is not None
    assert record.status == "failed"
    assert record.error["code"] == "source_changed"
    assert open_storage(worker_env).stat_clip(record.object_key) is None
    job = fetch_job(conn, clip_id)
    assert job is not None and not job.retries_left
