"""The clip job RQ runs: stat source → probe (cached) → cut → verify → upload → succeeded.

Failure policy (RQ's `Retry` is set on every clip job at enqueue time):
- transient failures (storage or network trouble, Redis blips, timeouts) are re-raised with
  the record put back to `queued`, so RQ retries them with back-off;
- everything else (bad request, invalid media, failed verification, engine bugs) marks the
  clip `failed`, sets the in-memory job's `retries_left = 0` (RQ reads it right after the
  job raises) and re-raises, so RQ lists it as failed with its reason and never retries;
- a cancel ends the job quietly: the record already says `canceled`.

The source's ETag is checked against the one the API accepted the request with twice: before
the cut and after it (before the upload). The API may have used a second-old HEAD, and the
source may be replaced while FFmpeg reads it; either way the clip fails with
`source_changed` (not retried: the frames were validated against the other version) and no
clip of the wrong version is ever stored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import get_current_job
from rq.timeouts import JobTimeoutException

from clipper import engine
from clipper.engine import EngineConfig
from clipper.errors import BadRequest, Canceled, ClipperError, TransientError
from clipper.logs import public_text
from clipper.settings import Settings, get_settings
from clipper.storage import Storage, open_storage
from workers import keys, metrics, records
from workers.cancel import CancelWatcher
from workers.probe_cache import cached_probe
from workers.queues import redis_connection
from workers.records import ClipRecord
from workers.submit.request import ClipRequest
from workers.webhooks import enqueue_delivery
from workers.worker import content_lock, workdirs
from workers.worker.progress import ProgressWriter

log = logging.getLogger(__name__)

#: Extra life of the source link beyond the job timeout (retries start a new link).
SOURCE_LINK_MARGIN_SECONDS = 600

CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".ts": "video/mp2t",
}


class SourceChanged(BadRequest):
    """The source object is not the version the request was accepted for; submit again."""

    code = "source_changed"


def _check_source_version(storage: Storage, record: ClipRecord) -> None:
    if storage.stat_source(record.source_key).etag != record.source_etag:
        raise SourceChanged(
            "the source was replaced after the request was accepted; submit it again",
            field="source",
        )


def run_clip(clip_id: str) -> dict[str, Any] | None:
    """RQ entry point for one clip (the RQ job id is the clip id)."""
    settings = get_settings()
    conn = redis_connection(settings)
    record = records.load(conn, clip_id)
    if record is None or record.status not in records.ACTIVE:
        return None  # canceled (or expired) before a worker got to it
    started = records.now_iso()
    if not records.update_if_status(
        conn,
        clip_id,
        records.ACTIVE,
        status="running",
        started_at=started,
        progress={"phase": "probing", "percent": 0.0, "eta_seconds": None},
    ):
        return None
    metrics.record_state(conn, "running", clip_id=clip_id)
    wall_start = time.monotonic()
    try:
        result = _cut_and_store(conn, open_storage(settings), settings, record)
    except Canceled:
        log.info("clip %s canceled", clip_id)
        metrics.record_state(conn, "canceled", clip_id=clip_id)
        return None
    except Exception as exc:
        if _cancel_requested(conn, clip_id):
            # The engine may report a killed FFmpeg as an error: the cancel explains it.
            metrics.record_state(conn, "canceled", clip_id=clip_id)
            return None
        if isinstance(exc, TransientError | RedisError | OSError | JobTimeoutException):
            _transient(conn, record, exc, time.monotonic() - wall_start)
            raise
        _fail(conn, record, exc, time.monotonic() - wall_start)
        raise
    finally:
        with contextlib.suppress(RedisError):
            content_lock.release(conn, record.content_hash, clip_id)
    return {"clip_id": clip_id, "size_bytes": result["size_bytes"]}


def _cancel_requested(conn: Redis, clip_id: str) -> bool:
    try:
        return bool(conn.exists(keys.cancel(clip_id)))
    except RedisError:
        return False


def _cut_and_store(
    conn: Redis, storage: Storage, settings: Settings, record: ClipRecord
) -> dict[str, Any]:
    request = ClipRequest.model_validate(record.request)  # the JSON the API stored
    progress = ProgressWriter(conn, record.id)
    progress("probing", 0.0)
    _check_source_version(storage, record)
    known = conn.get(keys.content(record.content_hash))
    if known and storage.stat_clip(record.object_key) is not None:
        result: dict[str, Any] = json.loads(known)  # type: ignore[arg-type]
        return _succeed(conn, record, result, uploaded=False)
    shared = content_lock.wait_or_claim(
        conn,
        record.content_hash,
        record.id,
        ttl_seconds=record.timeout_seconds,
        max_wait_seconds=record.timeout_seconds / 2,
    )
    if shared is not None and storage.stat_clip(record.object_key) is not None:
        return _succeed(conn, record, shared, uploaded=False)

    read_start = metrics.process_read_bytes()  # ops: bytes FFmpeg reads (probe + cut)
    link_ttl = min(record.timeout_seconds + SOURCE_LINK_MARGIN_SECONDS, 7 * 24 * 3600)
    input_url = storage.source_input_url(record.source_key, ttl_seconds=link_ttl)
    config = EngineConfig.from_settings(settings)
    media = cached_probe(
        conn, storage, record.source_key, record.source_etag, config=config, input_url=input_url
    )
    spec = request.cut_spec()
    ext = Path(record.object_key).suffix
    work_root = settings.work_dir or Path(tempfile.gettempdir())
    workdirs.sweep(work_root)  # folders that killed jobs on this host left behind
    with (
        workdirs.job_work_dir(work_root, record.id) as work_dir,
        CancelWatcher(conn, record.id) as watcher,
    ):
        # The engine's own temp files go inside the job's folder too: one folder per clip.
        config = dataclasses.replace(config, work_dir=work_dir)
        output = work_dir / f"clip{ext}"
        cut_start = time.monotonic()
        report = engine.cut(
            input_url,
            output,
            spec,
            media=media,
            context=engine.RunContext(config, cancel=watcher.event, progress=progress),
        )
        wall_seconds = time.monotonic() - cut_start
        bytes_read = metrics.read_bytes_since(read_start)  # before the upload reads
        if watcher.event.is_set():
            raise Canceled("canceled during the cut")
        _check_source_version(storage, record)  # replaced while FFmpeg read it?
        progress("uploading", 0.0)
        size_bytes = output.stat().st_size
        if record.error.get("retrying") and storage.abort_clip_uploads(record.object_key):
            # An earlier attempt died mid-upload: no parts of it may linger.
            log.info("clip %s: aborted the unfinished upload of an earlier attempt", record.id)
        storage.put_clip(
            record.object_key,
            output,
            metadata=_provenance(record, request, report.model_dump(mode="json")),
            content_type=CONTENT_TYPES.get(ext, "application/octet-stream"),
        )
    result = {
        "size_bytes": size_bytes,
        "duration_seconds": float(report.duration_seconds),
        "accuracy": report.model_dump(mode="json"),
    }
    metrics.record_success(
        conn,
        strategy=str(getattr(report, "strategy", "unknown")),
        wall_seconds=wall_seconds,
        media_seconds=float(report.duration_seconds),
        bytes_read=bytes_read,
        bytes_written=size_bytes,
    )
    return _succeed(conn, record, result, uploaded=True)


def _succeed(
    conn: Redis, record: ClipRecord, result: dict[str, Any], *, uploaded: bool
) -> dict[str, Any]:
    if uploaded:
        conn.set(keys.content(record.content_hash), json.dumps(result), ex=keys.RECORD_TTL_SECONDS)
    done = records.update_if_status(
        conn,
        record.id,
        ("running",),
        status="succeeded",
        result=result,
        error={},
        finished_at=records.now_iso(),
        progress={"phase": "done", "percent": 100.0, "eta_seconds": 0},
    )
    if not done:
        # Canceled while uploading: honour it, and take back the object this job made.
        if uploaded:
            open_storage(get_settings()).delete_clip(record.object_key)
            conn.delete(keys.content(record.content_hash))
        raise Canceled("canceled while uploading")
    metrics.record_state(conn, "succeeded", clip_id=record.id)
    if record.callback_url:
        enqueue_delivery(conn, record.id, "clip.succeeded")
    return result


def _provenance(
    record: ClipRecord, request: ClipRequest, accuracy: dict[str, Any]
) -> dict[str, str]:
    """Where the clip came from, as object metadata (capped: S3 allows 2 KB in all)."""
    segments = [r.model_dump(mode="json") for r in request.ranges]
    return {
        "clip-id": record.id,
        "content-hash": record.content_hash,
        "source-key": record.source_key[:512],
        "source-etag": record.source_etag[:80],
        "ranges": json.dumps(segments, separators=(",", ":"))[:600],
        "accuracy": request.accuracy.value,
        "preset": request.preset.value,
        "strategy": str(accuracy.get("strategy", ""))[:40],
    }


def _error_of(exc: BaseException) -> dict[str, Any]:
    """What the clip record (and so the client) says about a failure: the problem, never an
    internal host, path or URL (the traceback RQ stores keeps those, redacted)."""
    if isinstance(exc, ClipperError):
        return exc.to_dict() | {"message": public_text(exc.message)}
    if isinstance(exc, JobTimeoutException):
        return {"code": "timeout", "message": "the job ran past its time limit", "field": None}
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return {"code": "disk_full", "message": "the work disk is full", "field": None}
    if isinstance(exc, RedisError):
        return {"code": "transient", "message": "the queue (Redis) is unavailable", "field": None}
    if isinstance(exc, OSError):
        return {"code": "transient", "message": f"local I/O failed ({type(exc).__name__})",
                "field": None}  # fmt: skip
    # Unknown errors may quote signed URLs: show only the class, the traceback stays in RQ.
    return {"code": "internal", "message": f"internal error ({type(exc).__name__})", "field": None}


def _fail(conn: Redis, record: ClipRecord, exc: BaseException, wall_seconds: float) -> None:
    job = get_current_job()
    if job is not None:
        job.retries_left = 0  # not worth retrying: RQ reads this right after we raise
    error = _error_of(exc)
    if records.update_if_status(
        conn, record.id, ("running",), status="failed", error=error, finished_at=records.now_iso()
    ):
        metrics.record_failure(conn, error["code"], wall_seconds=wall_seconds)
        metrics.record_state(conn, "failed", clip_id=record.id, error=error["code"])
        if record.callback_url:
            enqueue_delivery(conn, record.id, "clip.failed")


def _transient(conn: Redis, record: ClipRecord, exc: BaseException, wall_seconds: float) -> None:
    job = get_current_job()
    if job is not None and job.retries_left:
        error = _error_of(exc) | {"retrying": True}
        try:
            records.update_if_status(
                conn,
                record.id,
                ("running",),
                status="queued",
                error=error,
                progress={"phase": "waiting_retry", "percent": 0.0, "eta_seconds": None},
            )
            metrics.record_state(conn, "queued", clip_id=record.id, error=error["code"])
        except RedisError:
            log.warning("clip %s: could not record the retry", record.id)
        return
    try:
        _fail(conn, record, exc, wall_seconds)
    except RedisError:
        log.warning("clip %s: could not record the failure", record.id)
