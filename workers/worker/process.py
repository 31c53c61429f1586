"""The worker process: serves the queues in priority order with the JSON serializer, and keeps
going through what an operator meets: a killed work-horse, a dead worker, a Redis outage.

RQ's scheduler runs in the same worker (`with_scheduler=True`, `ClipScheduler`) because retry
back-off schedules jobs for later, and a scheduled job needs a scheduler to come back.

RQ 3.0's defaults leave a dead worker's clip `running` for up to ten minutes. The timings
here (RQ's default in brackets), and what they buy:

- a busy worker refreshes its job's heartbeat every `HEARTBEAT_INTERVAL_SECONDS` [30 s], and
  the job counts as abandoned `HEARTBEAT_GRACE_SECONDS` after the last one [60 s];
- every worker, busy or idle, runs maintenance every `MAINTENANCE_INTERVAL_SECONDS`
  [600 s; an idle worker only between 405 s waits for work]: it restarts its scheduler when
  that died or could not take the lock yet, and cleans the registries. The cleaning lock
  of a queue expires with the interval and is not released, so the whole fleet cleans each
  queue about once per interval [RQ: an 899 s lock, released after cleaning; a worker killed
  while holding it stopped all cleaning for 15 minutes];
- an idle worker retries Redis after at most `REDIS_RETRY_MAX_SECONDS` [60 s], and
  `run_worker` starts a fresh worker when the loop gave up on a Redis error.

So a job whose worker died is retried, or failed, at most about
GRACE + INTERVAL + MAINTENANCE = 50 s after the last heartbeat; its first retry is due 5 s
later and a scheduler is up by then (`ClipScheduler.LOCK_TTL_SECONDS` + one maintenance
pass). What happens to the clip record on the way: `workers.worker.recovery`.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError
from rq import Queue, Worker, worker_registration
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.job import Job
from rq.registry import clean_registries
from rq.serializers import JSONSerializer
from rq.utils import now

from clipper.lifetime import die_with_parent
from clipper.settings import Settings
from workers.metrics import RedactingWorkerMixin
from workers.queues import QUEUE_NAMES, get_queues, redis_connection, worker_queue_names
from workers.worker import recovery, workdirs
from workers.worker.scheduler import ClipScheduler

log = logging.getLogger(__name__)

#: How often a busy worker refreshes its job's heartbeat.
HEARTBEAT_INTERVAL_SECONDS = 10
#: How long after its last heartbeat a job counts as abandoned (its worker is gone).
HEARTBEAT_GRACE_SECONDS = 30
#: How often every worker looks for abandoned jobs and a dead scheduler.
MAINTENANCE_INTERVAL_SECONDS = 10
#: Longest wait between attempts to reach Redis while it is down.
REDIS_RETRY_MAX_SECONDS = 5.0
#: Pause before `run_worker` starts a fresh worker after one stopped on an error.
RESTART_DELAY_SECONDS = 2.0


class ClipWorker(RedactingWorkerMixin, Worker):
    """RQ's forking worker with Clipper's timings and fault handling (see the module doc)."""

    max_connection_wait_time = REDIS_RETRY_MAX_SECONDS
    _worker_pid = 0

    @property
    def dequeue_timeout(self) -> int:
        """Wait at most one maintenance interval for work, so an idle worker maintains too."""
        return min(super().dequeue_timeout, MAINTENANCE_INTERVAL_SECONDS)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """Like RQ's (the next heartbeat is due within the interval, or the job's time is up
        sooner), with `HEARTBEAT_GRACE_SECONDS` of grace instead of RQ's 60 s."""
        due = float(self.job_monitoring_interval)
        if job.timeout and job.timeout > 0:
            due = min(due, max(job.timeout - working_time, 0.0))
        return int(due) + HEARTBEAT_GRACE_SECONDS

    def maintain_heartbeats(self, job: Job, execution: Any) -> None:
        """Refresh the heartbeats and, when due, run maintenance: a busy worker reaps too."""
        try:
            super().maintain_heartbeats(job, execution)
        except RedisError as exc:
            # The horse keeps cutting; the next beat tries again (within the grace).
            self.log.warning("heartbeat not sent: Redis unavailable (%s)", type(exc).__name__)
        if self.should_run_maintenance_tasks:
            self.run_maintenance_tasks()

    def run_maintenance_tasks(self) -> None:
        """RQ's maintenance (scheduler restart, registry cleaning); Redis errors skip a pass."""
        try:
            super().run_maintenance_tasks()
        except RedisError as exc:
            self.log.warning("maintenance skipped: Redis unavailable (%s)", type(exc).__name__)
            self.last_cleaned_at = now()  # type: ignore[assignment]  # RQ annotates it None

    def clean_registries(self) -> None:
        """RQ's registry cleaning (abandoned jobs are retried or failed there), per queue under
        a lock that expires with the interval (see the module doc)."""
        for queue in self.queues:
            if self.connection.set(
                queue.registry_cleaning_key, self.name, nx=True, ex=MAINTENANCE_INTERVAL_SECONDS
            ):
                clean_registries(queue, self._exc_handlers)
                worker_registration.clean_worker_registry(queue)
                queue.intermediate_queue.cleanup(self, queue)
        self.last_cleaned_at = now()  # type: ignore[assignment]  # RQ annotates it None

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        """RQ's `_start_scheduler`, with `ClipScheduler` (RQ names its class in the code)."""
        scheduler = ClipScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        scheduler.worker_pid = os.getpid()
        self.scheduler = scheduler
        scheduler.acquire_locks()
        if not scheduler.acquired_locks:
            return  # another scheduler holds them; maintenance tries again
        if burst:
            try:
                scheduler.register_birth()
                scheduler.enqueue_scheduled_jobs()
            finally:
                scheduler.release_locks()
                scheduler.register_death()
        else:
            scheduler.start()

    def teardown(self) -> None:
        """RQ's teardown, each step done even when Redis is down (then its keys expire)."""
        if self.is_horse:
            return
        if self.scheduler:
            self.stop_scheduler()
        try:
            self.register_death()
            self.unsubscribe()
        except RedisError:
            self.log.warning("worker death not registered: Redis unavailable")
            if self.pubsub_thread:
                self.pubsub_thread.stop()  # it would retry Redis for a dead worker forever

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        self._worker_pid = os.getpid()
        super().fork_work_horse(job, queue)

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        # RQ moves the horse to its own process group, so a SIGKILLed worker (e.g. by
        # `clipper up`'s PDEATHSIG) would leave it, and its FFmpeg, running: tie it to the worker.
        die_with_parent()
        if os.getppid() != self._worker_pid:  # the worker died before prctl took effect
            os._exit(1)
        super().main_work_horse(job, queue)


def build_worker(settings: Settings, queue_names: Sequence[str] = QUEUE_NAMES) -> ClipWorker:
    """A worker for these queues (served in the order given), then webhook deliveries."""
    conn = redis_connection(settings)
    # RQ's worker blocks on BLPOP longer than our short API socket timeout.
    conn.connection_pool.connection_kwargs["socket_timeout"] = None

    def on_horse_killed(job: Job, retpid: int, ret_val: int, rusage: Any) -> None:
        recovery.horse_killed(settings, job, ret_val)

    return ClipWorker(
        get_queues(worker_queue_names(queue_names), conn),
        connection=conn,
        serializer=JSONSerializer,
        job_monitoring_interval=HEARTBEAT_INTERVAL_SECONDS,
        maintenance_interval=MAINTENANCE_INTERVAL_SECONDS,
        work_horse_killed_handler=on_horse_killed,
    )


def run_worker(
    settings: Settings, queue_names: Sequence[str] = QUEUE_NAMES, *, burst: bool = False
) -> bool:
    """Work until stopped (or, with `burst`, until the queues are empty).

    RQ's loop ends on some Redis errors (a timeout, a failed registration); then a fresh
    worker starts after `RESTART_DELAY_SECONDS`, until a signal asks the process to stop.
    """
    # Folders that killed jobs on this host left behind (their lock died with them).
    workdirs.sweep(settings.work_dir or Path(tempfile.gettempdir()))
    while True:
        worker: ClipWorker | None = None
        worked = False
        try:
            worker = build_worker(settings, queue_names)  # registers with Redis already
            worked = bool(worker.work(burst=burst, with_scheduler=True))
        except RedisError as exc:
            log.error("worker stopped: Redis unavailable (%s)", type(exc).__name__)
        if burst or (worker is not None and worker._shutdown_requested_date is not None):
            return worked
        if _stop_requested_while_waiting(RESTART_DELAY_SECONDS):
            return worked
        log.warning("starting a fresh worker after an error")


def _stop_requested_while_waiting(seconds: float) -> bool:
    """Sleep, unless SIGTERM/SIGINT arrives first (then True)."""
    stopped: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, _frame: stopped.append(signum))
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        deadline = time.monotonic() + seconds
        while not stopped and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return bool(stopped)
