"""Webhook deliveries have their own queue, served by every worker after its clip queues, and
RQ keeps their jobs for a bounded time (real Redis)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from redis import Redis

from clipper.cli import main
from tests.fixtures.services import local_settings
from workers.queues import QUEUE_NAMES, get_queue, worker_queue_names
from workers.webhooks import (
    WEBHOOK_FAILURE_TTL_SECONDS,
    WEBHOOK_RESULT_TTL_SECONDS,
    enqueue_delivery,
)
from workers.worker.process import build_worker


def test_a_delivery_goes_to_the_webhooks_queue_with_bounded_ttls(redis_url: str) -> None:
    conn = Redis.from_url(redis_url)
    event_id = enqueue_delivery(conn, "clp_q", "clip.succeeded")
    webhooks = get_queue("webhooks", conn)
    assert webhooks.get_job_ids() == [event_id]
    assert all(len(get_queue(name, conn)) == 0 for name in QUEUE_NAMES)  # no clip queue
    job = webhooks.fetch_job(event_id)
    assert job is not None
    assert job.func_name == "workers.webhooks.deliver"
    assert job.args == ["clp_q", event_id, "clip.succeeded"]
    assert job.failure_ttl == WEBHOOK_FAILURE_TTL_SECONDS <= 7 * 24 * 3600
    assert job.result_ttl == WEBHOOK_RESULT_TTL_SECONDS
    assert job.retries_left == 4


@pytest.mark.parametrize(
    ("given", "served"),
    [
        (QUEUE_NAMES, ["interactive", "default", "bulk", "webhooks"]),
        (["bulk"], ["bulk", "webhooks"]),
        (["webhooks"], ["webhooks"]),
        (["webhooks", "interactive"], ["webhooks", "interactive"]),
    ],
)
def test_every_worker_serves_webhooks_after_its_clip_queues(
    given: list[str], served: list[str], redis_url: str, tmp_path: Path
) -> None:
    assert worker_queue_names(given) == served
    worker = build_worker(local_settings(tmp_path, redis_url=redis_url), given)
    assert worker.queue_names() == served


def test_the_worker_command_knows_the_webhooks_queue() -> None:
    refused = CliRunner().invoke(main, ["worker", "--queues", "nope"])
    assert refused.exit_code == 2
    assert "interactive, default, bulk, webhooks" in refused.output
