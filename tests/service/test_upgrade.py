"""Upgrade safety: what the previous version left in Redis still loads and finishes.

A deployment is upgraded while clips are queued. The clip record, the owner's join key, an
Idempotency-Key entry and the RQ jobs below are written by hand, byte for byte in the format
the previous version (branch `main` before the submit-path rework) wrote them: hash fields as
strings, nested fields as compact JSON, the request as the API's full `model_dump(mode="json")`,
the jobs naming `workers.jobs.run_clip` and `workers.webhooks.deliver` with RQ's JSON
serializer. Nothing here calls Clipper's service code to build them; then the current code
runs them (an in-process RQ worker, the API in-process) on a real Redis and S3.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue, Retry, SimpleWorker
from rq.serializers import JSONSerializer

from clipper.settings import get_settings
from clipper.storage import open_storage
from tests.fixtures.app import InProcessApp, api_keys_setting, settings_env, upload_source
from tests.fixtures.receiver import WebhookReceiver, verifies, verifies_legacy
from tests.fixtures.services import s3_settings
from workers.queues import QUEUE_NAMES, get_queues, worker_queue_names

MONTH_SECONDS = 30 * 24 * 3600  # the previous version's RECORD_TTL_SECONDS
DAY_SECONDS = 24 * 3600  # its IDEMPOTENCY_TTL_SECONDS and RQ result TTL


class _Receiver:
    """A local webhook endpoint that keeps every POST body."""

    def __init__(self) -> None:
        self.bodies: queue.Queue[bytes] = queue.Queue()
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.put(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upgraded(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, s3_server: Any, tmp_path: Path
) -> Iterator[InProcessApp]:
    """The current API in-process, its settings also the worker's CLIPPER_* environment."""
    from api.app import create_app

    settings = s3_settings(
        s3_server,
        redis_url=redis_url,
        api_keys=api_keys_setting(),
        work_dir=tmp_path / "work",
        webhook_allow_private=True,
    )
    open_storage(settings).ensure_buckets()
    Redis.from_url(redis_url).flushdb()
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield InProcessApp(settings, create_app(settings))
    get_settings.cache_clear()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _old_request(source_key: str, **fields: Any) -> dict[str, Any]:
    """The request as the previous API stored it: every field, defaults included."""
    return {
        "source": source_key,
        "start": None,
        "end": None,
        "segments": None,
        "accuracy": "exact",
        "preset": "original",
        "timecode_origin": "embedded",
        "filename": None,
        "callback_url": None,
        "priority": "default",
        **fields,
    }


def _old_record(**fields: Any) -> dict[str, str]:
    """A clip record hash as the previous version wrote it (every value a string)."""
    now = _iso(datetime.now(UTC))
    record: dict[str, Any] = {
        "content_hash": "",
        "callback_url": "",
        "queue": "",
        "clip_seconds": 0.0,
        "timeout_seconds": 0,
        "progress": {},
        "result": {},
        "error": {},
        "created_at": now,
        "updated_at": now,
        "started_at": "",
        "finished_at": "",
        **fields,
    }
    nested = {"request", "progress", "result", "error"}
    return {
        name: json.dumps(value, separators=(",", ":")) if name in nested else str(value)
        for name, value in record.items()
    }


def _write_queued_clip(conn: Redis, source_key: str, etag: str) -> dict[str, Any]:
    """A queued 1 s clip (frames 25..50 of a 25 fps source), its join key, an Idempotency-Key
    entry and its RQ job, all as the previous version left them."""
    clip_id = f"clp_{uuid.uuid4().hex}"
    request = _old_request(source_key, start=1.0, end=2.0, accuracy="fast")
    content = {
        "v": 1,
        "source": source_key,
        "etag": etag,
        "ranges": [{"end": 50, "start": 25}],
        "accuracy": "fast",
        "preset": "original",
    }
    content_hash = _sha256(json.dumps(content, sort_keys=True))
    filename = "a_1.0-2.0.mkv"
    conn.hset(
        f"clipper:clip:{clip_id}",
        mapping=_old_record(
            id=clip_id,
            owner="alice",
            status="queued",
            kind="clip",
            request=request,
            source_key=source_key,
            source_etag=etag,
            bucket="clips",
            object_key=f"{content_hash[:2]}/{content_hash}.mkv",
            filename=filename,
            content_hash=content_hash,
            queue="default",
            clip_seconds=1.0,
            timeout_seconds=121,
            progress={"phase": "queued", "percent": 0.0, "eta_seconds": None},
        ),
    )
    conn.expire(f"clipper:clip:{clip_id}", MONTH_SECONDS)
    join = {"content": content_hash, "filename": filename, "callback_url": ""}
    join_key = f"clipper:join:alice:{_sha256(json.dumps(join, sort_keys=True))}"
    conn.set(join_key, clip_id, ex=MONTH_SECONDS)
    idempotency = {
        "body_sha256": _sha256(json.dumps(request, sort_keys=True)),
        "status_code": 202,
        "clip_id": clip_id,
    }
    conn.set(f"clipper:idem:alice:{_sha256('order-7')}", json.dumps(idempotency), ex=DAY_SECONDS)
    Queue("default", connection=conn, serializer=JSONSerializer).enqueue(
        "workers.jobs.run_clip",
        clip_id,
        job_id=clip_id,
        job_timeout=121,
        result_ttl=DAY_SECONDS,
        failure_ttl=7 * DAY_SECONDS,
        retry=Retry(max=3, interval=[5, 30, 120]),
        description=f"clip {clip_id}",
    )
    return {
        "id": clip_id,
        "request": request,
        "object_key": f"{content_hash[:2]}/{content_hash}.mkv",
    }


def _write_full_video_with_webhook(
    conn: Redis, source_key: str, etag: str, size_bytes: int, callback_url: str
) -> str:
    """A succeeded full-video clip with a callback, and its queued delivery job."""
    clip_id = f"clp_{uuid.uuid4().hex}"
    event_id = f"evt_{uuid.uuid4().hex}"
    request = _old_request(source_key, callback_url=callback_url)
    conn.hset(
        f"clipper:clip:{clip_id}",
        mapping=_old_record(
            id=clip_id,
            owner="bob",
            status="succeeded",
            kind="source",
            request=request,
            source_key=source_key,
            source_etag=etag,
            bucket="sources",
            object_key=source_key,
            filename="a.mkv",
            content_hash=_sha256(source_key),
            callback_url=callback_url,
            result={"size_bytes": size_bytes, "duration_seconds": 4.0},
            finished_at=_iso(datetime.now(UTC)),
        ),
    )
    conn.expire(f"clipper:clip:{clip_id}", MONTH_SECONDS)
    Queue("interactive", connection=conn, serializer=JSONSerializer).enqueue(
        "workers.webhooks.deliver",
        clip_id,
        event_id,
        "clip.succeeded",
        job_id=event_id,
        job_timeout=60,
        retry=Retry(max=4, interval=[10, 60, 300, 1800]),
        description=f"webhook clip.succeeded for {clip_id}",
    )
    return clip_id


def _work(redis_url: str) -> None:
    """The current worker's queues (the clip queues, then `webhooks`), in-process."""
    conn = Redis.from_url(redis_url)
    queues = get_queues(worker_queue_names(QUEUE_NAMES), conn)
    SimpleWorker(queues, connection=conn, serializer=JSONSerializer).work(burst=True)


def test_queued_work_of_the_previous_version_finishes(
    upgraded: InProcessApp, media_h264_mkv: Any
) -> None:
    settings = upgraded.settings
    source_key = f"upgrade/{uuid.uuid4().hex[:8]}/a.mkv"
    upload_source(settings, source_key, media_h264_mkv.path)
    storage = open_storage(settings)
    etag = storage.stat_source(source_key).etag
    conn = upgraded.redis
    clip = _write_queued_clip(conn, source_key, etag)
    receiver = _Receiver()
    try:
        full_id = _write_full_video_with_webhook(
            conn, source_key, etag, media_h264_mkv.path.stat().st_size, receiver.url
        )
        _work(settings.redis_url)
        delivered = json.loads(receiver.bodies.get(timeout=10))
    finally:
        receiver.close()
    assert (delivered["type"], delivered["clip"]["id"]) == ("clip.succeeded", full_id)

    alice, bob = upgraded.client("alice"), upgraded.client("bob")
    shown = alice.get(f"/v1/clips/{clip['id']}").json()
    assert shown["status"] == "succeeded", shown
    assert shown["request"] == clip["request"]  # shown as it was stored
    assert shown["result"]["accuracy"]["frame_count"] == 25
    assert storage.stat_clip(clip["object_key"]) is not None

    body = {"source": source_key, "start": 1, "end": 2, "accuracy": "fast"}
    # The old Idempotency-Key entry: the first answer's status code and the same clip.
    again = alice.post("/v1/clips", json=body, headers={"Idempotency-Key": "order-7"})
    assert (again.status_code, again.json()["id"]) == (202, clip["id"])
    reused = alice.post("/v1/clips", json=body | {"end": 3}, headers={"Idempotency-Key": "order-7"})
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    # The old join key: the same owner's identical request is the same clip ...
    joined = alice.post("/v1/clips", json=body)
    assert (joined.status_code, joined.json()["id"]) == (200, clip["id"])
    # ... and another owner gets a clip of their own on the same stored bytes.
    other = bob.post("/v1/clips", json=body)
    assert other.status_code == 200
    assert other.json()["id"] != clip["id"]
    assert other.json()["result"]["size_bytes"] == shown["result"]["size_bytes"]


def test_a_delivery_queued_by_the_previous_version_is_signed_both_ways(
    upgraded: InProcessApp, media_h264_mkv: Any
) -> None:
    """The previous version queued `workers.webhooks.deliver(clip_id, event_id, event_type)`
    on `interactive`: the current worker delivers it with Standard Webhooks headers, which
    the `standardwebhooks` library verifies, and with the old `Clipper-Signature`, which
    the previous release's recipe verifies with the secret it handed out."""
    settings = upgraded.settings
    source_key = f"upgrade/{uuid.uuid4().hex[:8]}/a.mkv"
    upload_source(settings, source_key, media_h264_mkv.path)
    etag = open_storage(settings).stat_source(source_key).etag
    conn = upgraded.redis
    bob = upgraded.client("bob")
    legacy_secret = bob.get("/v1/webhook-secret").json()["secret"]
    with WebhookReceiver() as receiver:
        size = media_h264_mkv.path.stat().st_size
        clip_id = _write_full_video_with_webhook(conn, source_key, etag, size, receiver.url)
        (event_id,) = Queue("interactive", connection=conn).get_job_ids()
        _work(settings.redis_url)
        delivery = receiver.next(timeout=10)
    event = json.loads(delivery.body)
    assert (event["event_id"], event["type"], event["clip"]["id"]) == (
        event_id, "clip.succeeded", clip_id,
    )  # fmt: skip
    assert delivery.header("webhook-id") == event_id
    assert verifies(bob.get("/v1/webhooks/secret").json()["secret"], delivery)
    assert verifies_legacy(legacy_secret, delivery)
