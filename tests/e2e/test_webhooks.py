"""Webhook delivery end to end: a real worker POSTs signed events to a local receiver, which
verifies them with the Standard Webhooks libraries (Python's `standardwebhooks`, and npm's
under Node.js) before, during and after an admin rotates the client's secret; the deprecated
`Clipper-Signature` still verifies with the previous release's recipe."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.app import ServiceStack, upload_source
from tests.fixtures.receiver import Delivery, WebhookReceiver, verifies, verifies_legacy

pytestmark = pytest.mark.slow

NODE_RECEIVER = Path(__file__).resolve().parents[1] / "node"
ADMIN = {"Authorization": "Bearer admin-key-change-me"}  # the stack's default admin key


def _clip(stack: ServiceStack, client: httpx.Client, media: Any, receiver: WebhookReceiver,
          **fields: Any) -> dict[str, Any]:  # fmt: skip
    key = f"hooks/{uuid.uuid4().hex[:8]}.mp4"
    upload_source(stack.settings, key, media.path)
    body = {"source": key, "start": 1, "end": 2, "callback_url": receiver.url, **fields}
    answer = client.post("/v1/clips", json=body)
    assert answer.status_code == 202, answer.text
    resource: dict[str, Any] = answer.json()
    return resource


def test_webhook_signed_delivery(local_clip_stack: ServiceStack, media_h264_mp4: Any) -> None:
    stack = local_clip_stack
    client = stack.client("alice")
    secret = client.get("/v1/webhooks/secret").json()["secret"]
    legacy = client.get("/v1/webhook-secret").json()["secret"]
    with WebhookReceiver() as receiver:
        clip = _clip(stack, client, media_h264_mp4, receiver)
        delivery = receiver.next(timeout=60)
    event = json.loads(delivery.body)
    assert event["type"] == "clip.succeeded"
    assert event["clip"]["id"] == clip["id"]
    assert event["clip"]["result"]["download_url"]
    assert delivery.header("webhook-id") == event["event_id"]
    assert verifies(secret, delivery)
    assert verifies_legacy(legacy, delivery)  # the deprecated header, for one more release
    # Another client's secret, or a changed body, does not verify.
    bob = stack.client("bob")
    assert not verifies(bob.get("/v1/webhooks/secret").json()["secret"], delivery)
    assert not verifies_legacy(bob.get("/v1/webhook-secret").json()["secret"], delivery)
    tampered = Delivery(delivery.headers, delivery.body.replace(b"succeeded", b"failed"))
    assert not verifies(secret, tampered) and not verifies_legacy(legacy, tampered)


def test_webhook_retried_after_receiver_error(
    local_clip_stack: ServiceStack, media_h264_mp4: Any
) -> None:
    stack = local_clip_stack
    client = stack.client("alice")
    with WebhookReceiver(statuses=[500]) as receiver:
        _clip(stack, client, media_h264_mp4, receiver, start=0, end=1)
        # The first attempt answered 500; the retry (after the first back-off) is delivered.
        delivery = receiver.next(timeout=60)
        assert receiver.attempts == 2
    assert json.loads(delivery.body)["type"] == "clip.succeeded"
    assert verifies(client.get("/v1/webhooks/secret").json()["secret"], delivery)


def test_webhook_on_failure(
    local_clip_stack: ServiceStack, media_truncated_faststart_mp4: Any
) -> None:
    stack = local_clip_stack
    client = stack.client("bob")
    with WebhookReceiver() as receiver:
        _clip(stack, client, media_truncated_faststart_mp4, receiver, start=3.5, end=4.8)
        delivery = receiver.next(timeout=60)
    event = json.loads(delivery.body)
    assert event["type"] == "clip.failed"
    assert event["clip"]["status"] == "failed"
    assert event["clip"]["error"]["code"]
    assert event["clip"]["result"] is None
    assert verifies(client.get("/v1/webhooks/secret").json()["secret"], delivery)


def _rotate(stack: ServiceStack, client: str, **query: int) -> dict[str, Any]:
    with httpx.Client(base_url=stack.api_url, headers=ADMIN, timeout=30) as admin:
        answer = admin.post(f"/v1/admin/webhook-secrets/{client}/rotate", params=query)
    assert answer.status_code == 200, answer.text
    rotated: dict[str, Any] = answer.json()
    return rotated


def test_receivers_keep_verifying_during_and_after_a_rotation(
    local_clip_stack: ServiceStack, media_h264_mp4: Any
) -> None:
    stack = local_clip_stack
    client = stack.client("alice")
    old = client.get("/v1/webhooks/secret").json()["secret"]
    rotation = _rotate(stack, "alice")
    shown = client.get("/v1/webhooks/secret").json()
    new = shown["secret"]
    assert new != old and shown["previous_valid_until"] == rotation["previous_valid_until"]
    with WebhookReceiver() as receiver:
        _clip(stack, client, media_h264_mp4, receiver, start=2, end=3)
        during = receiver.next(timeout=60)
        # A receiver still on the old secret and one already on the new both verify.
        assert verifies(old, during) and verifies(new, during)
        assert len(during.header("webhook-signature").split(" ")) == 2
        # The rotation is over (an admin ends the overlap with a rotation that keeps none).
        _rotate(stack, "alice", overlap_seconds=0)
        newest = client.get("/v1/webhooks/secret").json()["secret"]
        _clip(stack, client, media_h264_mp4, receiver, start=3, end=4)
        after = receiver.next(timeout=60)
    assert verifies(newest, after)
    assert not verifies(old, after) and not verifies(new, after)
    assert verifies_legacy(client.get("/v1/webhook-secret").json()["secret"], after)


@pytest.fixture(scope="module")
def node_receiver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/node/verify.js with its locked npm packages installed in a temp folder."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("Node.js and npm are needed for this test (Debian: apt-get install nodejs)")
    folder = tmp_path_factory.mktemp("node-receiver")
    for name in ("package.json", "package-lock.json", "verify.js"):
        shutil.copy(NODE_RECEIVER / name, folder / name)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=folder,
        check=True,
        timeout=180,
        capture_output=True,
    )
    return folder


def _node_verifies(folder: Path, secret: str, delivery: Delivery) -> bool:
    stdin = {"secret": secret, "headers": delivery.headers, "body": delivery.body.decode()}
    done = subprocess.run(
        ["node", "verify.js"], cwd=folder, input=json.dumps(stdin), capture_output=True,
        text=True, timeout=30, check=False,
    )  # fmt: skip
    if done.returncode == 0:
        assert json.loads(done.stdout)["event_id"] == delivery.header("webhook-id")
    return done.returncode == 0


def test_a_node_receiver_verifies_with_the_npm_standardwebhooks_package(
    local_clip_stack: ServiceStack, media_h264_mp4: Any, node_receiver: Path
) -> None:
    stack = local_clip_stack
    client = stack.client("bob")
    old = client.get("/v1/webhooks/secret").json()["secret"]
    _rotate(stack, "bob")
    new = client.get("/v1/webhooks/secret").json()["secret"]
    with WebhookReceiver() as receiver:
        _clip(stack, client, media_h264_mp4, receiver, start=0, end=2)
        delivery = receiver.next(timeout=60)
    assert _node_verifies(node_receiver, new, delivery)
    assert _node_verifies(node_receiver, old, delivery)  # during the rotation's overlap
    other = stack.client("alice").get("/v1/webhooks/secret").json()["secret"]
    assert not _node_verifies(node_receiver, other, delivery)
