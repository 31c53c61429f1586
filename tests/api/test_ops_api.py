"""The ops surface in-process (TestClient) on a real Redis: health, metrics, dashboard, admin."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from redis import Redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from starlette.testclient import TestClient

from api.app import create_app
from api.ops import install_ops
from clipper.errors import EngineError
from clipper.settings import Settings
from tests.fixtures.services import free_port, local_settings
from workers import metrics, records
from workers.metrics import RedactingWorkerMixin
from workers.queues import get_queue
from workers.records import ClipRecord

ADMIN = ("ops", "ops-admin-key-0123456789")
CLIENT = ("alice", "alice-client-key-0123456789")
SIG = "4b1d0c0ffee5eedfacade0123456789abcdef0123456789abcdef0123456789ab"
SIGNED_URL = (
    "http://storage:9000/clipper-sources/talk.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    f"&X-Amz-Credential=AKIAOPS%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature={SIG}"
)


def explode(url: str) -> None:
    """A job that fails the way an expired link does: FFmpeg quotes the signed URL."""
    raise EngineError(f"ffmpeg exited 1: {url}: Server returned 403 Forbidden (access denied)")


class _Worker(RedactingWorkerMixin, SimpleWorker):
    """In-process worker with the same failure redaction as ClipWorker."""


def make_settings(tmp_path: Path, redis_url: str, **overrides: object) -> Settings:
    """Local-storage settings with one admin and one client key."""
    return local_settings(
        tmp_path / "storage",
        redis_url=redis_url,
        admin_keys=SecretStr(":".join(ADMIN)),
        api_keys=SecretStr(":".join(CLIENT)),
        **overrides,
    )


def make_app(settings: Settings) -> FastAPI:
    """The service's app with the ops surface (installed here if create_app does not yet)."""
    app = create_app(settings)
    if not any(getattr(r, "path", None) == "/readyz" for r in app.routes):
        install_ops(app, settings)
    return app


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return make_settings(tmp_path, redis_url)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(make_app(settings)) as c:
        yield c


@pytest.fixture
def conn(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _record(clip_id: str, status: records.Status, **extra: object) -> ClipRecord:
    return ClipRecord(
        id=clip_id,
        owner=CLIENT[0],
        status=status,
        kind="clip",
        request={"source": "talk.mp4", "start": 1, "end": 2},
        source_key="talk.mp4",
        source_etag="etag",
        bucket="clips",
        object_key=f"{clip_id}.mp4",
        filename="talk.mp4",
        queue="default",
        **extra,  # type: ignore[arg-type]
    )


def make_failed_job(conn: Redis, clip_id: str) -> None:
    """A clip whose job really ran in a worker and failed quoting a signed URL."""
    records.save(conn, _record(clip_id, "running"))
    get_queue("default", conn).enqueue("tests.api.test_ops_api.explode", SIGNED_URL, job_id=clip_id)
    _Worker([get_queue("default", conn)], connection=conn, serializer=JSONSerializer).work(
        burst=True
    )
    # What the job code does on a non-retryable failure (classified reason on the record).
    records.update_if_status(
        conn,
        clip_id,
        ("running",),
        status="failed",
        error={"code": "engine_error", "message": "ffmpeg exited 1", "field": None},
    )


def make_queued_job(conn: Redis, clip_id: str) -> None:
    records.save(conn, _record(clip_id, "queued"))
    get_queue("interactive", conn).enqueue("tests.api.test_ops_api.explode", "x", job_id=clip_id)


# --- health ------------------------------------------------------------------------------


def test_healthz_answers(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200


def test_readyz_reports_every_component(client: TestClient) -> None:
    first = client.get("/readyz")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "ready"
    assert set(body["components"]) == {"redis", "storage", "ffmpeg"}
    assert body["components"]["ffmpeg"]["ffmpeg"].startswith("ffmpeg version")
    assert body["components"]["ffmpeg"]["cached"] is False
    assert client.get("/readyz").json()["components"]["ffmpeg"]["cached"] is True


def test_readyz_is_503_fast_when_redis_is_down(tmp_path: Path) -> None:
    dead = make_settings(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(make_app(dead)) as c:
        started = time.monotonic()
        r = c.get("/readyz")
        elapsed = time.monotonic() - started
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not_ready"
    assert body["components"]["redis"]["ready"] is False
    assert body["components"]["storage"]["ready"] is True
    assert elapsed < 3.0


def test_readyz_is_503_when_ffmpeg_is_missing(tmp_path: Path, redis_url: str) -> None:
    broken = make_settings(tmp_path, redis_url, ffmpeg_path=str(tmp_path / "no-ffmpeg"))
    with TestClient(make_app(broken)) as c:
        r = c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["components"]["ffmpeg"]["ready"] is False
    assert r.json()["components"]["redis"]["ready"] is True


# --- metrics -----------------------------------------------------------------------------


def _sample(text: str, prefix: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix + " ")]
    assert lines, f"{prefix} not in metrics"
    return float(lines[0].rsplit(" ", 1)[1])


def test_metrics_show_stored_counters_queues_and_http(client: TestClient, conn: Redis) -> None:
    metrics.record_failure(conn, "invalid_media")
    make_queued_job(conn, "clp_metrics_q")
    client.get("/healthz")
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert _sample(text, "clipper_redis_up") == 1
    assert _sample(text, 'clipper_failures_total{error="invalid_media"}') == 1
    assert _sample(text, 'clipper_queue_depth{queue="interactive"}') == 1
    prefix = 'clipper_http_requests_total{method="GET",route="/healthz",status="200"}'
    assert _sample(text, prefix) >= 1


# --- dashboard ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/dashboard/", "/dashboard/0/data/queues.json", "/dashboard/static/css/main.css"]
)
def test_dashboard_needs_admin_credentials(client: TestClient, path: str) -> None:
    anonymous = client.get(path)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert client.get(path, headers=basic(ADMIN[0], "wrong")).status_code == 401
    assert client.get(path, headers=basic("someone", ADMIN[1])).status_code == 401
    assert client.get(path, headers=bearer(CLIENT[1])).status_code == 403
    assert client.get(path, headers=basic(*ADMIN)).status_code == 200
    assert client.get(path, headers=bearer(ADMIN[1])).status_code == 200


def test_dashboard_lists_queues_and_failed_job_without_secrets(
    client: TestClient, conn: Redis
) -> None:
    make_failed_job(conn, "clp_dash_failed")
    make_queued_job(conn, "clp_dash_queued")
    auth = basic(*ADMIN)
    queues = client.get("/dashboard/0/data/queues.json", headers=auth).json()["queues"]
    by_name = {q["name"]: q for q in queues}
    assert by_name["default"]["failed_job_registry_count"] == 1
    assert by_name["interactive"]["count"] == 1
    assert by_name["default"]["failed_url"].startswith("/dashboard/")
    failed = client.get("/dashboard/0/data/jobs/default/failed/8/asc/1.json", headers=auth)
    jobs = failed.json()["jobs"]
    assert [j["id"] for j in jobs] == ["clp_dash_failed"]
    assert "EngineError" in jobs[0]["exc_info"]
    assert "Server returned 403" in jobs[0]["exc_info"]
    assert SIG not in failed.text
    detail = client.get("/dashboard/0/data/job/clp_dash_failed.json", headers=auth)
    assert detail.json()["status"] == "failed"
    assert SIG not in detail.text


def test_worker_stores_failure_redacted(conn: Redis) -> None:
    make_failed_job(conn, "clp_stored")
    job = get_queue("default", conn).fetch_job("clp_stored")
    assert job is not None
    result = job.latest_result()
    assert result is not None and result.exc_string
    assert "talk.mp4" in result.exc_string
    assert SIG not in result.exc_string
    assert "AKIAOPS" not in result.exc_string


# --- admin API ---------------------------------------------------------------------------


def test_admin_api_refuses_missing_and_client_keys(client: TestClient) -> None:
    anonymous = client.get("/v1/admin/jobs")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    as_client = client.get("/v1/admin/jobs", headers=bearer(CLIENT[1]))
    assert as_client.status_code == 403
    assert as_client.json()["status"] == 403


def test_admin_lists_failed_jobs_with_reason_and_owner(client: TestClient, conn: Redis) -> None:
    make_failed_job(conn, "clp_admin_failed")
    make_queued_job(conn, "clp_admin_queued")
    failed = client.get("/v1/admin/jobs?state=failed", headers=bearer(ADMIN[1])).json()
    assert failed["count"] == 1
    job = failed["jobs"][0]
    assert job["id"] == "clp_admin_failed"
    assert job["owner"] == CLIENT[0]
    assert job["queue"] == "default"
    assert job["failure"]["code"] == "engine_error"
    assert "Server returned 403" in job["failure"]["exc_tail"]
    assert SIG not in str(job)
    assert job["ended_at"] is not None
    queued = client.get("/v1/admin/jobs?state=queued", headers=bearer(ADMIN[1])).json()
    assert [j["id"] for j in queued["jobs"]] == ["clp_admin_queued"]
    assert queued["jobs"][0]["queue"] == "interactive"


def test_admin_retry_requeues_a_failed_job(client: TestClient, conn: Redis) -> None:
    make_failed_job(conn, "clp_retry")
    r = client.post("/v1/admin/jobs/clp_retry/retry", headers=bearer(ADMIN[1]))
    assert r.status_code == 200, r.text
    queue = get_queue("default", conn)
    assert "clp_retry" in queue.get_job_ids()
    assert "clp_retry" not in queue.failed_job_registry
    record = records.load(conn, "clp_retry")
    assert record is not None and record.status == "queued" and record.error == {}
    again = client.post("/v1/admin/jobs/clp_retry/retry", headers=bearer(ADMIN[1]))
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


def test_admin_cancel_queued_job_and_unknown_job(client: TestClient, conn: Redis) -> None:
    make_queued_job(conn, "clp_cancel")
    r = client.post("/v1/admin/jobs/clp_cancel/cancel", headers=bearer(ADMIN[1]))
    assert r.status_code == 200, r.text
    assert r.json()["previous_state"] == "queued"
    assert "clp_cancel" not in get_queue("interactive", conn).get_job_ids()
    record = records.load(conn, "clp_cancel")
    assert record is not None and record.status == "canceled"
    assert (
        client.post("/v1/admin/jobs/clp_cancel/cancel", headers=bearer(ADMIN[1])).status_code == 409
    )
    missing = client.post("/v1/admin/jobs/nope/cancel", headers=bearer(ADMIN[1]))
    assert missing.status_code == 404
    assert missing.json()["field"] == "id"


def test_refused_links_are_counted_by_reason(client: TestClient, settings: Settings) -> None:
    from clipper.storage.links import build_local_link

    secret = settings.link_secret.get_secret_value()
    future, past = int(time.time()) + 600, int(time.time()) - 10
    expired = build_local_link("", secret, "clips", "a/b.mp4", filename="b.mp4", expires_unix=past)
    forged = build_local_link("", "not-the-secret", "clips", "a/b.mp4", filename="b.mp4",
                              expires_unix=future)  # fmt: skip
    assert client.get(expired).status_code == 403
    assert client.get(forged).status_code == 403
    assert client.get(forged).status_code == 403
    text = client.get("/metrics").text
    assert _sample(text, 'clipper_link_issues_total{reason="expired"}') == 1
    assert _sample(text, 'clipper_link_issues_total{reason="invalid_signature"}') == 2


def test_dashboard_requeue_reopens_the_clip_and_delete_is_off(
    client: TestClient, conn: Redis
) -> None:
    make_failed_job(conn, "clp_dash_requeue")
    auth = basic(*ADMIN)
    r = client.post("/dashboard/job/clp_dash_requeue/requeue", headers=auth)
    assert r.json() == {"status": "OK"}
    assert "clp_dash_requeue" in get_queue("default", conn).get_job_ids()
    record = records.load(conn, "clp_dash_requeue")
    assert record is not None and record.status == "queued"
    deleted = client.post("/dashboard/job/clp_dash_requeue/delete", headers=auth)
    assert deleted.json() == {"status": "DISABLED"}
    assert "clp_dash_requeue" in get_queue("default", conn).get_job_ids()


def test_webhook_deliveries_show_in_the_admin_api_and_metrics(
    client: TestClient, conn: Redis
) -> None:
    from workers.webhooks import enqueue_delivery

    event_id = enqueue_delivery(conn, "clp_with_hook", "clip.succeeded")
    queued = client.get("/v1/admin/jobs?state=queued", headers=bearer(ADMIN[1])).json()
    assert [(j["id"], j["queue"]) for j in queued["jobs"]] == [(event_id, "webhooks")]
    assert _sample(client.get("/metrics").text, 'clipper_queue_depth{queue="webhooks"}') == 1
    auth = basic(*ADMIN)
    queues = client.get("/dashboard/0/data/queues.json", headers=auth).json()["queues"]
    assert {q["name"]: q["count"] for q in queues}["webhooks"] == 1


def test_an_admin_rotates_a_client_webhook_secret(client: TestClient) -> None:
    mine = bearer(CLIENT[1])
    before = client.get("/v1/webhooks/secret", headers=mine).json()
    rotate = f"/v1/admin/webhook-secrets/{CLIENT[0]}/rotate"
    assert client.post(rotate, headers=mine).status_code == 403  # a client cannot
    assert client.post(rotate).status_code == 401
    missing = client.post("/v1/admin/webhook-secrets/nobody/rotate", headers=bearer(ADMIN[1]))
    assert missing.status_code == 404
    assert missing.json()["field"] == "client"

    rotated = client.post(rotate, headers=bearer(ADMIN[1]))
    assert rotated.status_code == 200, rotated.text
    answer = rotated.json()
    assert answer["client"] == CLIENT[0]
    assert "secret" not in answer  # the client reads it itself
    until = datetime.fromisoformat(answer["previous_valid_until"])
    overlap = (until - datetime.fromisoformat(answer["since"])).total_seconds()
    assert abs(overlap - 24 * 3600) <= 1  # CLIPPER_WEBHOOK_ROTATION_SECONDS
    after = client.get("/v1/webhooks/secret", headers=mine).json()
    assert after["secret"] != before["secret"]
    assert after["previous_valid_until"] == answer["previous_valid_until"]

    at_once = client.post(rotate + "?overlap_seconds=0", headers=bearer(ADMIN[1])).json()
    assert at_once["previous_valid_until"] is None
    assert client.get("/v1/webhooks/secret", headers=mine).json()["previous_valid_until"] is None
