"""The HTTP API in-process (real Redis, real storage, real ffprobe; no worker).

Everything here is decided before a job exists: auth, validation, problem+json, ranges checked
against the probed source, dedup/idempotency bookkeeping, the full-video shortcut, outages.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.fixtures.app import InProcessApp, api_keys_setting, upload_source
from tests.fixtures.services import RedisServer, s3_settings

PROBLEM = "application/problem+json"


def _problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"] and body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body


@pytest.fixture
def source_key(api_app: InProcessApp, media_h264_mp4: Any) -> str:
    """A 5 s, 150-frame H.264 source in the library (fresh key per test)."""
    key = f"press/{uuid.uuid4().hex[:8]}/talk.mp4"
    upload_source(api_app.settings, key, media_h264_mp4.path)
    return key


def test_auth_required_with_challenge(api_app: InProcessApp) -> None:
    anonymous = api_app.client(None)
    body = _problem(anonymous.get("/v1/sources"), 401)
    assert body["code"] == "unauthorized"
    response = anonymous.get("/v1/sources", headers={"Authorization": "Bearer wrong"})
    _problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_unknown_routes_and_methods_are_problems(api_app: InProcessApp) -> None:
    client = api_app.client()
    not_json = client.post(
        "/v1/clips", content=b"{oops", headers={"Content-Type": "application/json"}
    )
    _problem(not_json, 422, "body")
    _problem(client.get("/v1/nothing-here"), 404)
    _problem(client.put("/v1/clips"), 405)
    _problem(client.get("/v1/clips/clp_doesnotexist"), 404, "id")


def test_healthz_and_openapi(api_app: InProcessApp) -> None:
    client = api_app.client(None)
    assert client.get("/healthz").json() == {"status": "ok"}
    spec = client.get("/openapi.json").json()
    assert "/v1/clips" in spec["paths"]
    assert spec["components"]["schemas"]["ClipRequest"].get("examples")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source": "a.mp4", "start": 1, "end": 2, "colour": "red"}, "colour"),
        ({"source": "a.mp4", "accuracy": "perfect"}, "accuracy"),
        ({"source": "a.mp4", "priority": "urgent"}, "priority"),
        ({"source": "a.mp4", "start": 1, "segments": [{"start": 1, "end": 2}]}, "body"),
        ({"start": 1, "end": 2}, "source"),
        ({"source": "a.mp4", "segments": [{"start": 1, "end": 2, "x": 1}]}, "segments[0].x"),
        ({"source": "a.mp4", "start": True, "end": 2}, "start"),
        ({"source": "a.mp4", "segments": []}, "segments"),
        ([1, 2], "body"),
    ],
)
def test_schema_errors_name_the_field(api_app: InProcessApp, body: Any, field: str) -> None:
    response = api_app.client().post("/v1/clips", json=body)
    problem = _problem(response, 422, field)
    assert problem["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("key", "field"),
    [("../etc/passwd", "source"), ("-i.mp4", "source"), ("/abs.mp4", "source")],
)
def test_hostile_source_keys_refused(api_app: InProcessApp, key: str, field: str) -> None:
    _problem(api_app.client().post("/v1/clips", json={"source": key}), 422, field)
    assert api_app.queued_jobs() == 0


def test_unknown_source_is_404_naming_source(api_app: InProcessApp) -> None:
    response = api_app.client().post("/v1/clips", json={"source": "nope.mp4", "end": 1})
    _problem(response, 404, "source")
    _problem(api_app.client().get("/v1/sources/nope.mp4"), 404, "key")


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"start": 1, "end": 99}, "end"),  # past the end of a 5 s source
        ({"start": 7, "end": 8}, "start"),  # starts past the end
        ({"start": 3, "end": 2}, "end"),  # end before start
        ({"start": 2, "end": 2}, "end"),  # empty range
        ({"start": "00:00:xx:00", "end": 2}, "start"),  # not a time
        ({"segments": [{"start": 0, "end": 1}, {"start": 4, "end": 9}]}, "segments[1].end"),
        ({"filename": 'a"\r\nSet-Cookie: x.mp4', "start": 1, "end": 2}, "filename"),
        ({"callback_url": "http://10.0.0.1/x", "start": 1, "end": 2}, "callback_url"),
    ],
)
def test_bad_requests_enqueue_nothing(
    api_app: InProcessApp, source_key: str, extra: dict[str, Any], field: str
) -> None:
    before = api_app.queued_jobs()
    response = api_app.client().post("/v1/clips", json={"source": source_key, **extra})
    _problem(response, 422, field)
    assert api_app.queued_jobs() == before


def test_longer_than_max_clip_seconds_refused(
    api_app: InProcessApp, media_h264_mp4: Any, redis_url: str
) -> None:
    from api.app import create_app

    settings = api_app.settings.model_copy(update={"max_clip_seconds": 2.0})
    limited = InProcessApp(settings, create_app(settings))
    key = f"limit/{uuid.uuid4().hex[:8]}.mp4"
    upload_source(settings, key, media_h264_mp4.path)
    response = limited.client().post("/v1/clips", json={"source": key, "start": 0, "end": 3})
    _problem(response, 422, "end")
    assert limited.queued_jobs() == 0
    ok = limited.client().post("/v1/clips", json={"source": key, "start": 0, "end": 1.5})
    assert ok.status_code == 202


def test_submit_queues_once_and_joins_identical_requests(
    api_app: InProcessApp, source_key: str
) -> None:
    client = api_app.client()
    body = {"source": source_key, "start": 1, "end": 2.5, "accuracy": "fast"}
    first = client.post("/v1/clips", json=body)
    assert first.status_code == 202, first.text
    clip = first.json()
    assert clip["status"] == "queued"
    assert clip["id"].startswith("clp_")
    assert first.headers["location"] == f"/v1/clips/{clip['id']}"
    assert api_app.queued_jobs() == 1
    again = client.post("/v1/clips", json=body)
    assert again.status_code == 202
    assert again.json()["id"] == clip["id"]
    assert api_app.queued_jobs() == 1
    # Another client gets its own clip id (clips are private), never this one.
    other = api_app.client("bob").post("/v1/clips", json=body)
    assert other.status_code == 202
    assert other.json()["id"] != clip["id"]
    _problem(api_app.client("bob").get(f"/v1/clips/{clip['id']}"), 404, "id")
    _problem(api_app.client("bob").delete(f"/v1/clips/{clip['id']}"), 404, "id")


def test_idempotency_key(api_app: InProcessApp, source_key: str) -> None:
    client = api_app.client()
    body = {"source": source_key, "start": 0.5, "end": 1.5}
    headers = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    first = client.post("/v1/clips", json=body, headers=headers)
    assert first.status_code == 202
    repeat = client.post("/v1/clips", json=body, headers=headers)
    assert repeat.status_code == 202
    assert repeat.json()["id"] == first.json()["id"]
    changed = client.post("/v1/clips", json={**body, "end": 2.0}, headers=headers)
    _problem(changed, 422, "Idempotency-Key")
    assert api_app.queued_jobs() == 1


def test_full_video_original_links_the_source_without_a_job(
    api_app: InProcessApp, source_key: str, media_h264_mp4: Any
) -> None:
    client = api_app.client()
    response = client.post("/v1/clips", json={"source": source_key})
    assert response.status_code == 200, response.text
    clip = response.json()
    assert clip["status"] == "succeeded"
    assert clip["result"]["size_bytes"] == media_h264_mp4.path.stat().st_size
    assert clip["result"]["download_url"]
    assert api_app.queued_jobs() == 0
    download = client.get(f"/v1/clips/{clip['id']}/download", follow_redirects=False)
    assert download.status_code == 307
    assert download.headers["location"].startswith("http")


def test_download_before_done_is_409(api_app: InProcessApp, source_key: str) -> None:
    client = api_app.client()
    clip = client.post("/v1/clips", json={"source": source_key, "start": 1, "end": 2}).json()
    _problem(client.get(f"/v1/clips/{clip['id']}/download"), 409, "id")


def test_cancel_queued_clip(api_app: InProcessApp, source_key: str) -> None:
    client = api_app.client()
    clip = client.post("/v1/clips", json={"source": source_key, "start": 1, "end": 2}).json()
    assert api_app.queued_jobs() == 1
    response = client.delete(f"/v1/clips/{clip['id']}")
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    assert api_app.queued_jobs() == 0
    assert client.get(f"/v1/clips/{clip['id']}").json()["status"] == "canceled"
    # A new identical request after a cancel is a new try, not the canceled clip.
    retry = client.post("/v1/clips", json={"source": source_key, "start": 1, "end": 2})
    assert retry.status_code == 202
    assert retry.json()["id"] != clip["id"]


def test_sources_list_and_probe(api_app: InProcessApp, source_key: str) -> None:
    client = api_app.client()
    prefix = source_key.rsplit("/", 1)[0] + "/"
    listing = client.get("/v1/sources", params={"prefix": prefix}).json()
    assert [item["key"] for item in listing["items"]] == [source_key]
    detail = client.get(f"/v1/sources/{source_key}", params={"near": 2.0})
    assert detail.status_code == 200, detail.text
    data = detail.json()
    assert data["frame_rate"] == "30000/1001"
    assert data["duration_seconds"] == pytest.approx(5.0, abs=0.1)
    assert data["start_timecode"] == "01:00:00;00"
    assert data["keyframes_near"]["2"], data
    _problem(client.get("/v1/sources", params={"prefix": "../x"}), 422, "prefix")


def test_webhook_secret_is_per_client(api_app: InProcessApp) -> None:
    alice = api_app.client("alice").get("/v1/webhooks/secret")
    assert alice.status_code == 200, alice.text
    shown = alice.json()
    assert shown["secret"].startswith("whsec_")
    assert shown["previous_valid_until"] is None
    assert shown["since"]
    bob = api_app.client("bob").get("/v1/webhooks/secret").json()
    assert bob["secret"] != shown["secret"]
    assert api_app.client("alice").get("/v1/webhooks/secret").json() == shown  # stored, kept
    _problem(api_app.client(None).get("/v1/webhooks/secret"), 401)


def test_the_legacy_webhook_secret_is_unchanged_and_marked_deprecated(
    api_app: InProcessApp,
) -> None:
    import hashlib
    import hmac

    answer = api_app.client("alice").get("/v1/webhook-secret")
    assert answer.status_code == 200
    assert answer.headers["deprecation"] == "true"
    assert "/v1/webhooks/secret" in answer.headers["link"]
    link_secret = api_app.settings.link_secret.get_secret_value().encode()
    derived = hmac.new(link_secret, b"webhook:alice", hashlib.sha256).hexdigest()
    # Byte for byte what the previous release answered: receivers may fetch it at run time.
    assert answer.json() == {
        "secret": derived,
        "algorithm": "HMAC-SHA256",
        "signed_payload": "{Clipper-Timestamp}.{raw body}",
        "signature_header": "Clipper-Signature: v1=<hex>",
    }
    legacy = api_app.client("alice").get("/openapi.json").json()["paths"]["/v1/webhook-secret"]
    assert legacy["get"]["deprecated"] is True


def test_redis_down_is_a_fast_503(
    api_app: InProcessApp, source_key: str, redis_server: RedisServer
) -> None:
    client = api_app.client()
    redis_server.stop()
    try:
        started = time.monotonic()
        response = client.post("/v1/clips", json={"source": source_key, "start": 1, "end": 2})
        elapsed = time.monotonic() - started
        _problem(response, 503)
        assert int(response.headers["retry-after"]) > 0
        assert elapsed < 5
        _problem(client.get("/v1/clips/clp_0123"), 503)
    finally:
        redis_server.start()
    # Back to normal once Redis is back.
    assert client.get("/v1/clips/clp_0123").status_code == 404


def test_storage_down_is_a_503(redis_url: str, s3_server: Any, s3_proxy: Any) -> None:
    from api.app import create_app

    settings = s3_settings(
        s3_server, redis_url=redis_url, s3_endpoint=s3_proxy.endpoint, api_keys=api_keys_setting()
    )
    app = InProcessApp(settings, create_app(settings))
    s3_proxy.stop()
    started = time.monotonic()
    response = app.client().post("/v1/clips", json={"source": "x.mp4", "start": 1, "end": 2})
    _problem(response, 503)
    assert int(response.headers["retry-after"]) > 0
    assert time.monotonic() - started < 10


def test_not_media_source_is_422_naming_source(api_app: InProcessApp, media_not_media: Any) -> None:
    key = f"junk/{uuid.uuid4().hex[:8]}.mp4"
    upload_source(api_app.settings, key, media_not_media.path)
    response = api_app.client().post("/v1/clips", json={"source": key, "start": 0, "end": 1})
    body = _problem(response, 422, "source")
    assert body["code"] == "invalid_media"
    assert api_app.queued_jobs() == 0
