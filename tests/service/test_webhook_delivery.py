"""Webhook deliveries as a Standard Webhooks receiver sees them: a real RQ worker in-process
delivers to a real HTTP receiver, which verifies with the `standardwebhooks` library, before,
during and after a rotation of the client's secret (real Redis, local storage)."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from api.app import create_app
from api.models import ClipSucceededEvent
from clipper.settings import Settings, get_settings
from clipper.storage import open_storage
from tests.fixtures.app import api_keys_setting, settings_env, upload_source
from tests.fixtures.receiver import Delivery, WebhookReceiver, verifies, verifies_legacy
from tests.fixtures.services import local_settings
from workers.delivery import attempt, secrets
from workers.queues import QUEUE_NAMES, get_queue, get_queues, redis_connection, worker_queue_names
from workers.submit import ClipOrder, ClipRequest, FullVideo, SubmitContext, SubmitMode, submit
from workers.webhooks import enqueue_delivery, legacy_client_secret


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings for the service, also the CLIPPER_* environment the in-process worker reads."""
    settings = local_settings(
        tmp_path / "storage",
        redis_url=redis_url,
        api_keys=api_keys_setting(),
        webhook_allow_private=True,
        webhook_timeout_seconds=2,
    )
    open_storage(settings).ensure_buckets()
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def _succeeded_clip(settings: Settings, media: Any, callback_url: str) -> str:
    """A full-video clip of alice's with a callback: succeeded at once, its event queued."""
    key = f"hooks/{uuid.uuid4().hex[:8]}.mp4"
    upload_source(settings, key, media.path)
    ctx = SubmitContext(redis_connection(settings), open_storage(settings), settings)
    order = ClipOrder("alice", ClipRequest(source=key, callback_url=callback_url))
    result = submit(ctx, order, mode=SubmitMode.THREAD)
    assert isinstance(result, FullVideo)
    return result.record.id


def _work(settings: Settings) -> None:
    conn = Redis.from_url(settings.redis_url)
    queues = get_queues(worker_queue_names(QUEUE_NAMES), conn)
    SimpleWorker(queues, connection=conn, serializer=JSONSerializer).work(burst=True)


def _signatures(delivery: Delivery) -> list[str]:
    return delivery.header("webhook-signature").split(" ")


def test_a_delivery_verifies_with_the_standard_webhooks_library_and_the_old_recipe(
    service: Settings, media_h264_mp4: Any
) -> None:
    conn = Redis.from_url(service.redis_url)
    with WebhookReceiver() as receiver:
        clip_id = _succeeded_clip(service, media_h264_mp4, receiver.url)
        _work(service)
        delivery = receiver.next(timeout=10)
    current = secrets.load(conn, "alice").current
    assert verifies(current, delivery)
    assert len(_signatures(delivery)) == 1
    assert not verifies(secrets.load(conn, "bob").current, delivery)
    assert not verifies(current, Delivery(delivery.headers, delivery.body.replace(b"ed", b"ex")))
    # The deprecated headers still verify as the previous release's receivers check them.
    assert verifies_legacy(legacy_client_secret(service, "alice"), delivery)
    assert not verifies_legacy(legacy_client_secret(service, "bob"), delivery)
    event = json.loads(delivery.body)
    assert delivery.header("webhook-id") == event["event_id"] == delivery.header("Clipper-Event-Id")
    assert event["event_id"].startswith("evt_") and len(event["event_id"]) == 36
    assert delivery.header("webhook-timestamp") == delivery.header("Clipper-Timestamp")
    assert (event["type"], event["clip"]["id"]) == ("clip.succeeded", clip_id)


def test_the_openapi_document_describes_what_is_sent(
    service: Settings, media_h264_mp4: Any
) -> None:
    with WebhookReceiver() as receiver:
        _succeeded_clip(service, media_h264_mp4, receiver.url)
        _work(service)
        delivery = receiver.next(timeout=10)
    document = create_app(service).openapi()
    operation = document["webhooks"]["clip.succeeded"]["post"]
    documented = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    deprecated = {p["name"] for p in operation["parameters"] if p.get("deprecated")}
    sent = {name.lower() for name in delivery.headers}
    assert documented <= sent, documented - sent
    assert {name for name in sent if name.startswith(("webhook-", "clipper-"))} == documented
    assert deprecated == {"clipper-event-id", "clipper-timestamp", "clipper-signature"}
    # The body is exactly what the event's schema says, no field more or less.
    event = ClipSucceededEvent.model_validate_json(delivery.body)
    raw = json.loads(delivery.body)
    assert set(raw["clip"]) == set(type(event.clip).model_fields)
    assert set(raw["clip"]["result"]) == set(type(event.clip.result).model_fields)
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ClipSucceededEvent"}
    assert document["webhooks"]["clip.failed"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"] == {"$ref": "#/components/schemas/ClipFailedEvent"}


def test_during_a_rotation_both_secrets_verify_and_after_it_only_the_new_one(
    service: Settings, media_h264_mp4: Any
) -> None:
    conn = Redis.from_url(service.redis_url)
    old = secrets.load(conn, "alice").current
    with WebhookReceiver() as receiver:
        clip_id = _succeeded_clip(service, media_h264_mp4, receiver.url)
        _work(service)
        before = receiver.next(timeout=10)
        new = secrets.rotate(conn, "alice", overlap_seconds=3600).current
        enqueue_delivery(conn, clip_id, "clip.succeeded")
        _work(service)
        during = receiver.next(timeout=10)
        # The same rotation an hour ago with a minute of overlap: the overlap is over.
        newest = secrets.rotate(
            conn, "alice", overlap_seconds=60, now_unix=time.time() - 3600
        ).current
        enqueue_delivery(conn, clip_id, "clip.succeeded")
        _work(service)
        after = receiver.next(timeout=10)
    assert verifies(old, before) and not verifies(new, before)
    assert len(_signatures(during)) == 2
    assert verifies(old, during) and verifies(new, during)  # either receiver keeps working
    assert len(_signatures(after)) == 1
    assert verifies(newest, after)
    assert not verifies(new, after) and not verifies(old, after)
    legacy = legacy_client_secret(service, "alice")
    assert all(verifies_legacy(legacy, d) for d in (before, during, after))  # untouched


def test_a_refused_delivery_is_retried_later_with_the_same_id(
    service: Settings, media_h264_mp4: Any
) -> None:
    conn = Redis.from_url(service.redis_url)
    with WebhookReceiver(statuses=[503]) as receiver:
        _succeeded_clip(service, media_h264_mp4, receiver.url)
        _work(service)
        assert receiver.attempts == 1 and receiver.deliveries.empty()
        queue = get_queue("webhooks", conn)
        (event_id,) = queue.scheduled_job_registry.get_job_ids()
        job = queue.fetch_job(event_id)
        assert job is not None and job.retries_left == 3
        queue.scheduled_job_registry.remove(job)
        queue.enqueue_job(job)  # what the scheduler does once the back-off has passed
        _work(service)
        delivery = receiver.next(timeout=10)
    assert delivery.header("webhook-id") == event_id
    assert verifies(secrets.load(conn, "alice").current, delivery)


def test_no_answer_within_the_timeout_does_not_count() -> None:
    with WebhookReceiver(delay_seconds=1.5) as receiver:
        started = time.monotonic()
        with pytest.raises(attempt.NotDelivered, match="no answer within the 1 s timeout"):
            attempt.send(attempt.Post(receiver.url, b"{}", {}), timeout_seconds=1)
        assert time.monotonic() - started < 1.5
        assert receiver.attempts == 1


def _raw_server(answer: Any) -> tuple[str, threading.Event]:
    """An HTTP endpoint on a free port answering one request with `answer(connection, stop)`."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        answer(conn, stop)
        conn.close()
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/hook", stop


def test_a_2xx_later_than_the_timeout_does_not_count() -> None:
    """A receiver trickling its status line: every read is quick, the answer as a whole late."""

    def trickle(conn: socket.socket, _stop: threading.Event) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
            conn.sendall(bytes([byte]))
            time.sleep(0.05)

    url, _ = _raw_server(trickle)
    late = r"answered 200 after \d+\.\d s, past the 1 s timeout"
    with pytest.raises(attempt.NotDelivered, match=late):
        attempt.send(attempt.Post(url, b"{}", {}), timeout_seconds=1)


def test_a_non_2xx_answer_does_not_count() -> None:
    with (
        WebhookReceiver(statuses=[410]) as receiver,
        pytest.raises(attempt.NotDelivered, match="answered 410"),
    ):
        attempt.send(attempt.Post(receiver.url, b"{}", {}), timeout_seconds=1)


def test_a_2xx_is_delivered_without_reading_the_answer_body() -> None:
    """A receiver that answers 200 and then trickles an endless body cannot hold the worker."""

    def endless(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
        while not stop.wait(0.2):
            conn.sendall(b"x")

    url, stop = _raw_server(endless)
    try:
        started = time.monotonic()
        assert attempt.send(attempt.Post(url, b"{}", {}), timeout_seconds=2) == 200
        assert time.monotonic() - started < 2
    finally:
        stop.set()
