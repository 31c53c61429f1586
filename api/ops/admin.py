"""Admin API (`/v1/admin`, admin keys only): list jobs by state, retry failed ones, cancel.

Jobs are found through RQ's queues and registries (the index of what is queued, running,
failed…); owner, timestamps and the classified failure come from the clip record.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from redis import Redis
from rq.command import send_stop_job_command
from rq.job import Job
from rq.queue import Queue
from rq.serializers import JSONSerializer

from api.deps import RedisDep, SettingsDep
from api.ops.auth import challenge_header, check_authorization
from api.problems import ApiProblem
from clipper.logs import redact
from workers import keys, metrics, records
from workers.cancel import request_cancel
from workers.queues import ALL_QUEUE_NAMES, get_queue
from workers.records import ClipRecord

log = logging.getLogger(__name__)

JobState = Literal["queued", "running", "failed", "succeeded", "canceled"]

#: Most jobs one listing returns.
MAX_LIST_LIMIT = 1000
#: Lines of a failure's traceback shown (the end names the error and quotes FFmpeg).
EXC_TAIL_LINES = 15


def require_admin(request: Request, settings: SettingsDep) -> str:
    """The admin's name; 401 without a valid key, 403 for a client (non-admin) key."""
    check = check_authorization(request.headers.get("authorization"), settings)
    if check.verdict == "admin" and check.name is not None:
        return check.name
    if check.verdict == "client":
        raise ApiProblem(403, "forbidden", "this endpoint needs an admin key")
    raise ApiProblem(401, "unauthorized", "admin key required", headers=challenge_header())


AdminDep = Annotated[str, Depends(require_admin)]

router = APIRouter(prefix="/v1/admin", tags=["admin"])


def _job_ids(queue: Queue, state: JobState) -> list[str]:
    if state == "queued":
        # Waiting to run: in the queue, or scheduled for a retry after back-off.
        return queue.get_job_ids() + queue.scheduled_job_registry.get_job_ids(cleanup=False)
    registry = {
        "running": queue.started_job_registry,
        "failed": queue.failed_job_registry,
        "succeeded": queue.finished_job_registry,
        "canceled": queue.canceled_job_registry,
    }[state]
    return list(registry.get_job_ids(cleanup=False))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _load_records(conn: Redis, ids: list[str]) -> dict[str, ClipRecord]:
    pipe = conn.pipeline(transaction=False)
    for job_id in ids:
        pipe.hgetall(keys.clip(job_id))
    out: dict[str, ClipRecord] = {}
    for job_id, raw in zip(ids, pipe.execute(), strict=True):
        if raw:
            out[job_id] = ClipRecord.from_mapping(raw)
    return out


def _exc_tail(job: Job) -> str | None:
    result = job.latest_result()
    text = getattr(result, "exc_string", None) if result is not None else None
    if not text:
        return None
    return redact("\n".join(text.rstrip().splitlines()[-EXC_TAIL_LINES:]))


def _describe(job: Job, queue: str, state: JobState, record: ClipRecord | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": job.id,
        "queue": queue,
        "state": state,
        "owner": record.owner if record else None,
        "clip_status": record.status if record else None,
        "description": job.description,
        "created_at": record.created_at if record else _iso(job.created_at),
        "enqueued_at": _iso(job.enqueued_at),
        "started_at": _iso(job.started_at),
        "ended_at": _iso(job.ended_at),
        "retries_left": job.retries_left,
    }
    if state == "running" and record is not None:
        entry["progress"] = record.progress
    if state == "failed":
        error = dict(record.error) if record and record.error else {}
        entry["failure"] = {
            "code": error.get("code", "unknown"),
            "message": redact(str(error.get("message", ""))),
            "field": error.get("field"),
            "exc_tail": _exc_tail(job),
        }
    return entry


@router.get("/jobs", summary="List jobs in one state, across queues")
def list_jobs(
    _admin: AdminDep,
    conn: RedisDep,
    state: JobState = "failed",
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 100,
) -> dict[str, Any]:
    """Jobs in `state` with owner, timestamps and (for failed jobs) the classified reason."""
    found: list[tuple[str, str]] = []
    for name in ALL_QUEUE_NAMES:
        found += [(name, job_id) for job_id in _job_ids(get_queue(name, conn), state)]
    found = found[:limit]
    ids = [job_id for _, job_id in found]
    jobs = Job.fetch_many(ids, connection=conn, serializer=JSONSerializer)
    recs = _load_records(conn, ids)
    items = [
        _describe(job, queue, state, recs.get(job.id))
        for (queue, _), job in zip(found, jobs, strict=True)
        if job is not None
    ]
    return {"state": state, "count": len(items), "jobs": items}


def reopen_failed_clip(conn: Redis, clip_id: str, *, by: str) -> bool:
    """Put a failed clip's record back to `queued` before its job is requeued (the job skips
    clips whose record is not active); False when the clip was not failed."""
    done = records.update_if_status(
        conn,
        clip_id,
        ("failed",),
        status="queued",
        error={},
        finished_at="",
        progress={"phase": "queued", "percent": 0.0, "eta_seconds": None},
    )
    if done:
        metrics.record_state(conn, "queued", clip_id=clip_id, by=by, action="retry")
    return done


def _audit(action: str, job_id: str, admin: str) -> None:
    log.info(
        "admin %s: %s %s",
        admin,
        action,
        job_id,
        extra={"event": f"admin.{action}", "clip_id": job_id, "job_id": job_id, "admin": admin},
    )


def _fetch(conn: Redis, job_id: str) -> Job:
    job = Job.fetch_many([job_id], connection=conn, serializer=JSONSerializer)[0]
    if job is None:
        raise ApiProblem(404, "not_found", f"no job {job_id}", field="id")
    return job


@router.post("/jobs/{job_id}/retry", summary="Requeue a failed job")
def retry_job(job_id: str, admin: AdminDep, conn: RedisDep) -> dict[str, Any]:
    """Put a failed job back on its queue; its clip goes back to `queued`."""
    _audit("retry", job_id, admin)
    job = _fetch(conn, job_id)
    queue = get_queue(job.origin, conn)
    if job_id not in queue.failed_job_registry:
        raise ApiProblem(409, "not_failed", f"job {job_id} is not in the failed registry")
    # The record first: the job refuses to run a clip whose record is not active.
    reopen_failed_clip(conn, job_id, by=admin)
    queue.failed_job_registry.requeue(job_id)
    return {"id": job_id, "state": "queued", "queue": queue.name}


@router.post("/jobs/{job_id}/cancel", summary="Cancel a queued or running job")
def cancel_job(job_id: str, admin: AdminDep, conn: RedisDep) -> dict[str, Any]:
    """Cancel like the client's DELETE does; a job without a clip record is stopped directly."""
    _audit("cancel", job_id, admin)
    job = _fetch(conn, job_id)
    raw_status = job.get_status(refresh=True)
    status = str(getattr(raw_status, "value", raw_status))
    if status not in ("queued", "scheduled", "deferred", "started"):
        raise ApiProblem(409, "not_active", f"job {job_id} is {status}: nothing to cancel")
    if records.load(conn, job_id) is not None:
        # The client's cancel path: counts and logs the state change itself.
        if not request_cancel(conn, job_id):
            raise ApiProblem(409, "not_active", f"clip {job_id} already finished")
    elif status == "started":
        send_stop_job_command(conn, job_id, serializer=JSONSerializer)
    else:
        job.cancel()
        metrics.record_state(conn, "canceled", clip_id=job_id, by=admin)
    return {"id": job_id, "previous_state": status, "state": "canceled"}
