"""Canceling clips: queued jobs are dropped from RQ, running ones stop cooperatively.

A running job polls `clipper:cancel:{id}` in a watcher thread and sets the engine's cancel
Event; the engine kills FFmpeg's process group and removes its temp files, the job removes
its work dir and any object it uploaded. This leaves nothing behind, which killing the
work-horse (`rq.command.send_stop_job_command`) cannot promise for temp files; that remains
the operator's hard stop (FFmpeg still dies with the horse through PDEATHSIG).
"""

from __future__ import annotations

import threading
from types import TracebackType

from redis import Redis
from redis.exceptions import RedisError

from workers import keys, metrics, records
from workers.queues import fetch_job

#: How often a running job looks for its cancel flag.
POLL_INTERVAL_SECONDS = 0.25


def request_cancel(conn: Redis, clip_id: str) -> bool:
    """Mark an active clip canceled and stop its job; False when it was already final."""
    done = records.update_if_status(
        conn,
        clip_id,
        records.ACTIVE,
        status="canceled",
        finished_at=records.now_iso(),
        error={"code": "canceled", "message": "canceled by the client"},
    )
    if not done:
        return False
    conn.set(keys.cancel(clip_id), "1", ex=keys.CANCEL_TTL_SECONDS)
    job = fetch_job(conn, clip_id)
    if job is not None and job.get_status(refresh=True) in ("queued", "scheduled", "deferred"):
        job.cancel()
        # A queued job never runs, so nobody else counts its cancel.
        metrics.record_state(conn, "canceled", clip_id=clip_id)
    return True


class CancelWatcher:
    """Context manager: a thread that sets `event` once the clip's cancel flag appears."""

    def __init__(self, conn: Redis, clip_id: str) -> None:
        self.event = threading.Event()
        self._conn = conn
        self._clip_id = clip_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"cancel-{clip_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(POLL_INTERVAL_SECONDS):
            try:
                if self._conn.exists(keys.cancel(self._clip_id)):
                    self.event.set()
                    return
            except RedisError:
                continue  # keep cutting through a Redis blip; check again next tick

    def __enter__(self) -> CancelWatcher:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
