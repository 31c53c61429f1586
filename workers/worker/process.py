"""The worker process: serves the queues in priority order with the JSON serializer.

Runs RQ's scheduler in the same worker (`with_scheduler=True`) because retry back-off
schedules jobs for later, and a scheduled job needs a scheduler to come back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from rq import Queue, Worker
from rq.job import Job
from rq.serializers import JSONSerializer

from clipper.lifetime import die_with_parent
from clipper.settings import Settings
from workers.metrics import RedactingWorkerMixin
from workers.queues import QUEUE_NAMES, get_queues, redis_connection, worker_queue_names


class ClipWorker(RedactingWorkerMixin, Worker):
    """RQ's forking worker, storing failure tracebacks with signed URLs redacted."""

    _worker_pid = 0

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
    queues = get_queues(worker_queue_names(queue_names), conn)
    return ClipWorker(queues, connection=conn, serializer=JSONSerializer)


def run_worker(
    settings: Settings, queue_names: Sequence[str] = QUEUE_NAMES, *, burst: bool = False
) -> bool:
    """Work until stopped (or, with `burst`, until the queues are empty)."""
    worker = build_worker(settings, queue_names)
    return bool(worker.work(burst=burst, with_scheduler=True))
