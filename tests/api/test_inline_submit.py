"""Warm submits run on the event loop (`api.inline_submit`); everything else, and everything
after a Redis error, in the thread pool. Real app, Redis and storage."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.fixtures.app import InProcessApp, upload_source
from tests.fixtures.services import RedisServer
from workers import records
from workers.submit import Blocker, ClipOrder, ClipRequest, NeedsThread, Queued, warm_source


def _order(body: dict[str, Any], idempotency_key: str | None = None) -> ClipOrder:
    return ClipOrder("alice", ClipRequest.model_validate(body), idempotency_key)


def _warm_source(api_app: InProcessApp, media: Any) -> str:
    key = f"inline/{uuid.uuid4().hex[:8]}.mp4"
    upload_source(api_app.settings, key, media.path)
    first = api_app.client().post("/v1/clips", json={"source": key, "start": 0, "end": 1})
    assert first.status_code == 202  # this one probed the source in a thread
    return key


def test_warm_new_clips_run_inline_and_store_what_the_thread_path_stores(
    api_app: InProcessApp, media_h264_mp4: Any
) -> None:
    key = _warm_source(api_app, media_h264_mp4)
    inline = api_app.app.state.services.inline
    body = {"source": key, "start": 1, "end": 2, "accuracy": "fast", "priority": "bulk"}
    assert warm_source(inline.ctx, key) is not None
    # Not inline (nothing written): an Idempotency-Key, a callback (DNS check), the full
    # video, a source this process has not seen.
    for order, blocker in (
        (_order(body, "order-1"), Blocker.IDEMPOTENCY_KEY),
        (_order(body | {"callback_url": "https://example.org/h"}), Blocker.CALLBACK_URL),
        (_order({"source": key}), Blocker.FULL_VIDEO),
        (_order(body | {"source": "not/seen.mp4"}), Blocker.COLD_SOURCE),
    ):
        assert inline.try_submit(order) == NeedsThread(blocker)

    queued_before = api_app.queued_jobs()
    response = api_app.client().post("/v1/clips", json=body)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/clips/{response.json()['id']}"
    assert api_app.queued_jobs() == queued_before + 1
    inline_record = records.load(api_app.redis, response.json()["id"])
    # The same request through the thread pool (an Idempotency-Key forces it).
    threaded = api_app.client().post(
        "/v1/clips", json=body | {"start": 2, "end": 3}, headers={"Idempotency-Key": "k-1"}
    )
    assert threaded.status_code == 202
    thread_record = records.load(api_app.redis, threaded.json()["id"])
    assert inline_record is not None and thread_record is not None
    assert inline_record.status == thread_record.status == "queued"
    assert inline_record.queue == thread_record.queue == "bulk"
    assert inline_record.source_etag == thread_record.source_etag
    assert inline_record.clip_seconds == thread_record.clip_seconds
    # Identical again: joins the inline clip (decided in the thread pool).
    again = api_app.client().post("/v1/clips", json=body)
    assert again.status_code == 202
    assert again.json()["id"] == inline_record.id
    assert api_app.queued_jobs() == queued_before + 2


def test_redis_error_inline_is_a_503_and_pauses_inline_submits(
    api_app: InProcessApp, media_h264_mp4: Any, redis_server: RedisServer
) -> None:
    key = _warm_source(api_app, media_h264_mp4)
    inline = api_app.app.state.services.inline
    client = api_app.client()
    body = {"source": key, "start": 1, "end": 2}
    assert warm_source(inline.ctx, key) is not None
    redis_server.stop()
    try:
        started = time.monotonic()
        response = client.post("/v1/clips", json=body)
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) > 0
        assert response.headers["content-type"].startswith("application/problem+json")
        assert time.monotonic() - started < 5
        assert inline.paused_until > time.monotonic()  # the breaker is open
        # So submits go to the thread pool, without a try at Redis.
        assert inline.try_submit(_order(body)) == NeedsThread(Blocker.PAUSED)
        assert client.post("/v1/clips", json=body).status_code == 503
    finally:
        redis_server.start()
    assert client.post("/v1/clips", json=body).status_code == 202  # via the thread pool
    inline.paused_until = 0.0
    # The breaker closed: a warm submit runs inline again (the POST then joins its clip).
    assert isinstance(inline.try_submit(_order(body | {"start": 3, "end": 4})), Queued)
    assert client.post("/v1/clips", json=body | {"start": 3, "end": 4}).status_code == 202
