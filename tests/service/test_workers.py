"""Unit tests of the worker glue: progress maths, timeouts, hashing, records, webhook rules."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from pydantic import SecretStr
from redis import Redis

from clipper.errors import UnsafeInput
from clipper.settings import Settings
from clipper.spec import Accuracy, CutSpec, Preset, Segment
from workers import records
from workers.delivery.signatures import legacy_signature
from workers.queues import job_timeout_seconds
from workers.submit.clipspec import body_hash, content_hash
from workers.submit.request import ClipRequest
from workers.webhooks import legacy_client_secret, validate_callback_url
from workers.worker.progress import ProgressWriter, eta_seconds, overall_percent


def test_phases_map_to_increasing_percent() -> None:
    points = [
        overall_percent(phase, fraction)
        for phase in ("probing", "cutting", "verifying", "uploading")
        for fraction in (0.0, 0.5, 1.0)
    ]
    assert points == sorted(points)
    assert points[0] == 0.0
    assert points[-1] == 100.0
    assert overall_percent("cutting", 2.0) == overall_percent("cutting", 1.0)


def test_eta_is_linear_and_unknown_at_start() -> None:
    assert eta_seconds(10.0, 0.5) is None
    assert eta_seconds(10.0, 25.0) == pytest.approx(30.0)


def test_job_timeout_grows_with_clip_and_transcode() -> None:
    short = job_timeout_seconds(10, transcode=False)
    long = job_timeout_seconds(3600, transcode=False)
    transcode = job_timeout_seconds(3600, transcode=True)
    assert 180 <= long < transcode
    assert short < long
    assert long >= 3600  # a one-hour copy-based clip must not hit RQ's 180 s default


def _spec(**fields: Any) -> CutSpec:
    return ClipRequest.model_validate({"source": "a.mp4", **fields}).cut_spec()


def test_cut_spec_of_a_request_single_segments_and_full() -> None:
    single = _spec(start=1.5, end="00:00:03:00", accuracy="fast")
    assert single.segments == (Segment(start=1.5, end="00:00:03:00"),)
    assert single.accuracy is Accuracy.FAST
    multi = _spec(segments=[{"start": 0, "end": 1}, {"start": 2, "end": 3}])
    assert len(multi.segments) == 2
    full = _spec(preset="mp4")
    assert full.is_full_video
    assert full.preset is Preset.MP4


def test_a_stored_request_validates_into_the_same_request() -> None:
    """The record stores `model_dump(mode="json")`; the job's validation gives it back."""
    request = ClipRequest(source="a.mp4", segments=[{"start": "00:00:01:00", "end": 2}])
    stored = json.loads(json.dumps(request.model_dump(mode="json")))
    assert ClipRequest.model_validate(stored) == request
    assert ClipRequest.model_validate(stored).cut_spec() == request.cut_spec()
    assert stored["accuracy"] == "exact" and stored["preset"] == "original"  # defaults stored


def test_content_hash_depends_on_what_the_bytes_depend_on() -> None:
    spec = _spec(start=1, end=2)
    base = content_hash(source_key="a.mp4", source_etag="e1", ranges=[(30, 60)], spec=spec)
    same = content_hash(source_key="a.mp4", source_etag="e1", ranges=[(30, 60)], spec=spec)
    assert base == same
    others = {
        content_hash(source_key="b.mp4", source_etag="e1", ranges=[(30, 60)], spec=spec),
        content_hash(source_key="a.mp4", source_etag="e2", ranges=[(30, 60)], spec=spec),
        content_hash(source_key="a.mp4", source_etag="e1", ranges=[(30, 61)], spec=spec),
        content_hash(
            source_key="a.mp4",
            source_etag="e1",
            ranges=[(30, 60)],
            spec=_spec(start=1, end=2, accuracy="fast"),
        ),
    }
    assert base not in others
    assert len(others) == 4


def test_body_hash_ignores_key_order() -> None:
    assert body_hash({"a": 1, "b": [1, 2]}) == body_hash({"b": [1, 2], "a": 1})
    assert body_hash({"a": 1}) != body_hash({"a": 2})


def test_legacy_signature_matches_an_independent_hmac() -> None:
    settings = Settings(link_secret=SecretStr("s3cret-for-tests"))
    secret = legacy_client_secret(settings, "alice")
    assert secret != legacy_client_secret(settings, "bob")
    derived = hmac.new(b"s3cret-for-tests", b"webhook:alice", hashlib.sha256).hexdigest()
    assert secret == derived  # what the previous release derived, so receivers keep it
    body = b'{"x":1}'
    expected = hmac.new(secret.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert legacy_signature(secret, 1700000000, body) == f"v1={expected}"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/hook",
        "file:///etc/passwd",
        "http://user:pw@example.org/",
        "http:///nohost",
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://localhost/hook",
    ],
)
def test_callback_urls_refused(url: str) -> None:
    with pytest.raises(UnsafeInput) as info:
        validate_callback_url(url, allow_private=False)
    assert info.value.field == "callback_url"


def test_private_callback_allowed_only_when_configured() -> None:
    url = "http://127.0.0.1:9/hook"
    assert validate_callback_url(url, allow_private=True) == url
    with pytest.raises(UnsafeInput):
        validate_callback_url("gopher://127.0.0.1/", allow_private=True)


def _record(clip_id: str) -> records.ClipRecord:
    return records.ClipRecord(
        id=clip_id,
        owner="alice",
        status="queued",
        kind="clip",
        request={"source": "a.mp4", "start": 1, "end": 2},
        source_key="a.mp4",
        source_etag="e1",
        bucket="clips",
        object_key="ab/abc.mp4",
        filename="a_1-2.mp4",
        clip_seconds=1.0,
        timeout_seconds=121,
    )


def test_record_round_trip_and_guarded_transitions(redis_url: str) -> None:
    conn = Redis.from_url(redis_url)
    clip_id = records.new_clip_id()
    records.save(conn, _record(clip_id))
    loaded = records.load(conn, clip_id)
    assert loaded is not None
    original = _record(clip_id)
    assert (loaded.request, loaded.clip_seconds, loaded.timeout_seconds, loaded.status) == (
        original.request,
        1.0,
        121,
        "queued",
    )
    assert records.update_if_status(conn, clip_id, ("queued",), status="running")
    assert records.update_if_status(conn, clip_id, records.ACTIVE, status="canceled")
    # A late worker write must not resurrect a canceled clip.
    assert not records.update_if_status(conn, clip_id, ("running",), status="succeeded")
    final = records.load(conn, clip_id)
    assert final is not None and final.status == "canceled"
    assert records.load(conn, "clp_missing") is None
    assert conn.ttl(f"clipper:clip:{clip_id}") > 0


def test_progress_writer_throttles_and_never_goes_back(redis_url: str) -> None:
    conn = Redis.from_url(redis_url)
    clip_id = records.new_clip_id()
    records.save(conn, _record(clip_id))
    records.update_if_status(conn, clip_id, ("queued",), status="running")
    now = [0.0]
    writer = ProgressWriter(conn, clip_id, clock=lambda: now[0])
    writer("cutting", 0.5)
    first = records.load(conn, clip_id)
    assert first is not None and first.progress["phase"] == "cutting"
    now[0] = 0.1
    writer("cutting", 0.9)  # within the throttle interval: not written
    second = records.load(conn, clip_id)
    assert second is not None and second.progress["percent"] == first.progress["percent"]
    now[0] = 1.0
    writer("verifying", 0.0)
    third = records.load(conn, clip_id)
    assert third is not None and third.progress["phase"] == "verifying"
    assert third.progress["percent"] >= second.progress["percent"]


def test_delivery_connects_to_the_checked_address() -> None:
    from workers.webhooks import pinned_request

    url, host, ext = pinned_request("https://hooks.example.org:8443/a?b=1", "93.184.216.34")
    assert url == "https://93.184.216.34:8443/a?b=1"
    assert host == {"Host": "hooks.example.org:8443"}
    assert ext == {"sni_hostname": "hooks.example.org"}
    url, host, ext = pinned_request("http://hooks.example.org/x", "2606:2800:220:1::")
    assert url == "http://[2606:2800:220:1::]/x"
    assert host == {"Host": "hooks.example.org"}
    assert ext == {}


def test_content_lock_one_cut_per_content(redis_url: str) -> None:
    import json
    import threading

    from clipper.errors import Canceled
    from workers import keys
    from workers.worker import content_lock

    conn = Redis.from_url(redis_url)
    first, second = records.new_clip_id(), records.new_clip_id()
    assert content_lock.wait_or_claim(conn, "h1", first, ttl_seconds=60, max_wait_seconds=5) is None
    # The holder's retry gets its own lock back at once.
    assert content_lock.wait_or_claim(conn, "h1", first, ttl_seconds=60, max_wait_seconds=0) is None
    # A second job waits, then takes the first job's result.
    result = {"size_bytes": 123, "duration_seconds": 1.0, "accuracy": {}}
    timer = threading.Timer(0.3, lambda: conn.set(keys.content("h1"), json.dumps(result)))
    timer.start()
    assert content_lock.wait_or_claim(conn, "h1", second, ttl_seconds=60, max_wait_seconds=10) == (
        result
    )
    timer.join()
    # Release is only for the holder; then the next job may cut.
    content_lock.release(conn, "h2", second)
    content_lock.release(conn, "h1", second)
    assert conn.get(keys.cutting("h1")) == first.encode()
    content_lock.release(conn, "h1", first)
    assert (
        content_lock.wait_or_claim(conn, "h1", second, ttl_seconds=60, max_wait_seconds=0) is None
    )
    # A waiter gives up after its deadline (and cuts), or stops when canceled.
    third = records.new_clip_id()
    assert content_lock.wait_or_claim(conn, "h3", first, ttl_seconds=60, max_wait_seconds=0) is None
    assert (
        content_lock.wait_or_claim(conn, "h3", third, ttl_seconds=60, max_wait_seconds=0.6) is None
    )
    conn.set(keys.cancel(third), "1")
    with pytest.raises(Canceled):
        content_lock.wait_or_claim(conn, "h3", third, ttl_seconds=60, max_wait_seconds=5)
