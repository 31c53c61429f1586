"""Clips whose job died with its process: the record follows what RQ does with the job.

RQ notices a lost job on two paths, and neither tells Clipper by itself:

- the **work-horse was killed** (SIGKILL, the OOM killer, RQ's own hard timeout): the worker
  that forked it sees the exit status at once and calls its `work_horse_killed_handler`
  (`horse_killed`, installed by `workers.worker.process.build_worker`) before retrying or
  failing the job;
- the **whole worker or host died**: the job's entry in the started registry stops being
  refreshed; once it has expired, the registry cleanup of any surviving worker calls the
  job's `on_failure` callback with `AbandonedJobError` (`on_clip_failure`, set on every clip
  job by `workers.queues.enqueue_clip`) before retrying or failing it.

Both end in `recover_lost_clip`: while the job has retries left the clip goes back to
`queued` (RQ re-queues the job after the back-off); with none left it is `failed` with the
classified reason `worker_lost` and its webhook goes out. Either way, what the dead attempt
left behind goes too: its content lock, its unfinished uploads and, when the folder is on
this host, its temp folder (other hosts sweep theirs when a worker starts there).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq.exceptions import AbandonedJobError
from rq.job import Job

from clipper.errors import ClipperError
from clipper.logs import redact
from clipper.settings import Settings, get_settings
from clipper.storage import open_storage
from workers import metrics, records
from workers.records import ClipRecord
from workers.webhooks import enqueue_delivery
from workers.worker import content_lock, workdirs

log = logging.getLogger(__name__)

#: The error code of a clip whose worker, work-horse or host died under it.
WORKER_LOST = "worker_lost"
#: Second look at the temp folder: FFmpeg dies a moment after its killed parent.
SWEEP_AGAIN_AFTER_SECONDS = 0.5


def on_clip_failure(
    job: Job,
    connection: Redis,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """RQ `on_failure` callback of clip jobs. Failures raised by the job itself are already
    recorded by the job; this handles the job RQ found abandoned (its worker died)."""
    if exc_type is AbandonedJobError or isinstance(exc_value, AbandonedJobError):
        recover_lost_clip(
            connection,
            job,
            "the worker running this clip stopped (killed, out of memory, or its host was lost)",
        )


def horse_killed(settings: Settings, job: Job, ret_val: int | None) -> None:
    """The worker's `work_horse_killed_handler`: the horse running `job` exited abnormally."""
    if ret_val is not None and os.WIFSIGNALED(ret_val):
        how = f"was killed (signal {os.WTERMSIG(ret_val)})"
    else:
        how = f"exited unexpectedly (status {ret_val})"
    recover_lost_clip(job.connection, job, f"the process cutting this clip {how}", settings)


def recover_lost_clip(
    conn: Redis, job: Job, cause: str, settings: Settings | None = None
) -> ClipRecord | None:
    """Put the clip of a lost job back to `queued` (retries left) or fail it; clean up."""
    settings = settings or get_settings()
    try:
        record = records.load(conn, job.id)
        if record is not None and record.status in records.ACTIVE:
            _record_loss(conn, record, cause, retrying=bool(job.retries_left))
        if record is not None:
            content_lock.release(conn, record.content_hash, record.id)
    except RedisError as exc:
        # RQ retries or fails the job regardless; the next attempt corrects the record.
        log.warning("clip %s: could not record the lost job: %s", job.id, type(exc).__name__)
        record = None
    _clean_up(settings, job.id, record)
    return record


def _record_loss(conn: Redis, record: ClipRecord, cause: str, *, retrying: bool) -> None:
    error: dict[str, Any] = {"code": WORKER_LOST, "message": cause, "field": None}
    log.warning("clip %s: %s (%s)", record.id, cause, "retrying" if retrying else "no retry left")
    if retrying:
        if records.update_if_status(
            conn,
            record.id,
            records.ACTIVE,
            status="queued",
            error=error | {"retrying": True},
            progress={"phase": "waiting_retry", "percent": 0.0, "eta_seconds": None},
        ):
            metrics.record_state(conn, "queued", clip_id=record.id, error=WORKER_LOST)
        return
    if records.update_if_status(
        conn, record.id, records.ACTIVE, status="failed", error=error,
        finished_at=records.now_iso(),
    ):  # fmt: skip
        metrics.record_failure(conn, WORKER_LOST)
        metrics.record_state(conn, "failed", clip_id=record.id, error=WORKER_LOST)
        if record.callback_url:
            enqueue_delivery(conn, record.id, "clip.failed")


def _clean_up(settings: Settings, clip_id: str, record: ClipRecord | None) -> None:
    """The dead attempt's temp folder (if on this host) and unfinished uploads."""
    root = settings.work_dir or Path(tempfile.gettempdir())
    workdirs.sweep(root, clip_id)
    if workdirs.folders(root, clip_id):  # a dying FFmpeg wrote into it, or a live duplicate
        time.sleep(SWEEP_AGAIN_AFTER_SECONDS)
        workdirs.sweep(root, clip_id)
    if record is None or record.kind != "clip":
        return
    try:
        aborted = open_storage(settings).abort_clip_uploads(record.object_key)
    except ClipperError as exc:
        # The next attempt aborts them before its own upload.
        log.warning("clip %s: unfinished uploads not aborted: %s", clip_id, redact(str(exc)))
        return
    if aborted:
        log.info("clip %s: aborted %d unfinished upload(s)", clip_id, aborted)
