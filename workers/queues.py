"""Redis connections, queue names and how a clip becomes an RQ job.

Clip queues are served in the order of `QUEUE_NAMES` (interactive first); webhook deliveries
have their own queue, `webhooks`, which every worker serves after the clip queues it was
given (`worker_queue_names`). Jobs use RQ's JSON serializer and carry only the clip id:
everything else is read from the clip record, so a job id (= clip id) is never reused for a
different payload.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal, get_args

from redis import Redis
from redis.client import Pipeline
from rq import Callback, Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from clipper.settings import Settings

#: A clip queue (a request's `priority`).
QueueName = Literal["interactive", "default", "bulk"]
#: Every clip queue, in the order a worker serves them.
QUEUE_NAMES: tuple[QueueName, ...] = get_args(QueueName)
#: Where a request without a `priority` goes.
DEFAULT_QUEUE: Final[QueueName] = "default"
#: Webhook deliveries: short HTTP jobs, kept apart so they never delay a clip.
WEBHOOK_QUEUE: Final = "webhooks"
#: Every queue Clipper has, in the order a default worker serves them.
ALL_QUEUE_NAMES: tuple[str, ...] = (*QUEUE_NAMES, WEBHOOK_QUEUE)

#: Redis socket timeouts: an unreachable Redis must turn into a quick 503, not a hang.
REDIS_SOCKET_TIMEOUT_SECONDS = 2.0
REDIS_CONNECT_TIMEOUT_SECONDS = 1.0

#: Fixed part of a job's timeout (start-up, probe, upload).
JOB_TIMEOUT_BASE_SECONDS = 120
#: Extra seconds of job time per second of clip: copy-based cuts are far faster than real
#: time; a transcode on 2 cores may run near real time at 1080p, hence the larger factor.
JOB_SECONDS_PER_CLIP_SECOND_COPY = 1.0
JOB_SECONDS_PER_CLIP_SECOND_TRANSCODE = 4.0

#: Back-off between retries of transient failures (storage or network trouble).
RETRY_INTERVALS_SECONDS = (5, 30, 120)

#: The clip job's failure callback, by dotted path: RQ calls it with `AbandonedJobError` when
#: a job's worker died (see `workers.worker.recovery`); the API never imports it.
CLIP_FAILURE_CALLBACK = "workers.jobs.on_clip_failure"
#: Time limit of that callback (it writes the record and aborts unfinished uploads).
CLIP_FAILURE_CALLBACK_TIMEOUT_SECONDS = 30

#: Keep RQ's own job data for a day; the clip record is what clients read.
JOB_RESULT_TTL_SECONDS = 24 * 3600
JOB_FAILURE_TTL_SECONDS = 7 * 24 * 3600


def redis_connection(settings: Settings) -> Redis:
    """A Redis client with short timeouts, so an outage fails fast."""
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


def get_queue(name: str, connection: Redis) -> Queue:
    """One of Clipper's queues, with the JSON serializer."""
    if name not in ALL_QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}; expected one of {', '.join(ALL_QUEUE_NAMES)}")
    return Queue(name, connection=connection, serializer=JSONSerializer)


def worker_queue_names(names: Sequence[str]) -> list[str]:
    """What a worker given `names` serves: them in order, then `webhooks` unless named (every
    worker delivers webhooks, so no deployment can leave them without one)."""
    return [*names] if WEBHOOK_QUEUE in names else [*names, WEBHOOK_QUEUE]


def get_queues(names: Sequence[str], connection: Redis) -> list[Queue]:
    """Queues in the order given (the order a worker serves them in)."""
    return [get_queue(name, connection) for name in names]


def job_timeout_seconds(clip_seconds: float, *, transcode: bool) -> int:
    """RQ job timeout for a clip of this length: RQ's 180 s default would kill long clips."""
    factor = (
        JOB_SECONDS_PER_CLIP_SECOND_TRANSCODE if transcode else JOB_SECONDS_PER_CLIP_SECOND_COPY
    )
    return int(JOB_TIMEOUT_BASE_SECONDS + factor * max(clip_seconds, 0.0))


def enqueue_clip(
    connection: Redis,
    clip_id: str,
    *,
    queue_name: str,
    timeout_seconds: int,
    pipeline: Pipeline | None = None,
) -> Job:
    """Queue the clip job; the RQ job id is the clip id. With `pipeline`, on its execute()."""
    queue = get_queue(queue_name, connection)
    return queue.enqueue(
        "workers.jobs.run_clip",  # the stable name (see workers/jobs.py), not the module's
        clip_id,
        job_id=clip_id,
        job_timeout=timeout_seconds,
        result_ttl=JOB_RESULT_TTL_SECONDS,
        failure_ttl=JOB_FAILURE_TTL_SECONDS,
        retry=Retry(max=len(RETRY_INTERVALS_SECONDS), interval=list(RETRY_INTERVALS_SECONDS)),
        on_failure=Callback(CLIP_FAILURE_CALLBACK, timeout=CLIP_FAILURE_CALLBACK_TIMEOUT_SECONDS),
        description=f"clip {clip_id}",
        pipeline=pipeline,
    )


def fetch_job(connection: Redis, job_id: str) -> Job | None:
    """The RQ job, or None when RQ no longer has it."""
    from rq.exceptions import NoSuchJobError

    try:
        return Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    except NoSuchJobError:
        return None
