"""Webhook delivery end to end: a real worker POSTs a signed event to a local receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.fixtures.app import ServiceStack, upload_source

pytestmark = pytest.mark.slow


class Receiver:
    """A local HTTP endpoint that records every POST; answers 500 to the first N."""

    def __init__(self, fail_first: int = 0) -> None:
        self.events: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(500)
                else:
                    receiver.events.put((dict(self.headers.items()), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on a free local port."""
    r = Receiver()
    yield r
    r.close()


def _verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The verification recipe in docs/api.md ("Webhooks")."""
    timestamp = headers["Clipper-Timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    fresh = abs(time.time() - int(timestamp)) < 300
    return fresh and hmac.compare_digest(headers["Clipper-Signature"], "v1=" + expected.hexdigest())


def test_webhook_signed_delivery(
    local_clip_stack: ServiceStack, media_h264_mp4: Any, receiver: Receiver
) -> None:
    stack = local_clip_stack
    key = f"hooks/{uuid.uuid4().hex[:8]}.mp4"
    upload_source(stack.settings, key, media_h264_mp4.path)
    client = stack.client("alice")
    secret = client.get("/v1/webhook-secret").json()["secret"]
    body = {"source": key, "start": 1, "end": 2, "callback_url": receiver.url}
    clip = client.post("/v1/clips", json=body)
    assert clip.status_code == 202, clip.text
    headers, raw = receiver.events.get(timeout=60)
    event = json.loads(raw)
    assert event["type"] == "clip.succeeded"
    assert event["clip"]["id"] == clip.json()["id"]
    assert event["clip"]["result"]["download_url"]
    assert headers["Clipper-Event-Id"] == event["event_id"]
    assert _verify(secret, headers, raw)
    # Another client's secret, or a changed body, does not verify.
    bob_secret = stack.client("bob").get("/v1/webhook-secret").json()["secret"]
    assert not _verify(bob_secret, headers, raw)
    assert not _verify(secret, headers, raw.replace(b"succeeded", b"failed"))


def test_webhook_retried_after_receiver_error(
    local_clip_stack: ServiceStack, media_h264_mp4: Any
) -> None:
    stack = local_clip_stack
    failing = Receiver(fail_first=1)
    try:
        key = f"hooks/{uuid.uuid4().hex[:8]}.mp4"
        upload_source(stack.settings, key, media_h264_mp4.path)
        client = stack.client("alice")
        body = {"source": key, "start": 0, "end": 1, "callback_url": failing.url}
        assert client.post("/v1/clips", json=body).status_code == 202
        # First attempt answered 500; the retry (after the first back-off) is delivered.
        headers, raw = failing.events.get(timeout=60)
        assert failing.fail_first == 0
        assert json.loads(raw)["type"] == "clip.succeeded"
        assert headers["Clipper-Signature"].startswith("v1=")
    finally:
        failing.close()


def test_webhook_on_failure(
    local_clip_stack: ServiceStack, media_truncated_faststart_mp4: Any, receiver: Receiver
) -> None:
    stack = local_clip_stack
    key = f"hooks/broken-{uuid.uuid4().hex[:8]}.mp4"
    upload_source(stack.settings, key, media_truncated_faststart_mp4.path)
    client = stack.client("bob")
    secret = client.get("/v1/webhook-secret").json()["secret"]
    body = {"source": key, "start": 3.5, "end": 4.8, "callback_url": receiver.url}
    clip = client.post("/v1/clips", json=body)
    assert clip.status_code == 202, clip.text
    headers, raw = receiver.events.get(timeout=60)
    event = json.loads(raw)
    assert event["type"] == "clip.failed"
    assert event["clip"]["status"] == "failed"
    assert event["clip"]["error"]["code"]
    assert event["clip"]["result"] is None
    assert _verify(secret, headers, raw)
