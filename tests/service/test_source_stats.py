"""The API's short-lived memory of source HEADs (`workers.submit.source_stats`) and what a stale one
may and may not do.

Unit tests use a small in-memory storage (pure, no services). The rest run the real app and
an in-process RQ worker on real Redis and S3 with a long TTL, so the memory is stale for sure
when the source is replaced: a queued clip must fail with `source_changed` (never a clip of
the other version), and answers that hand out existing bytes must see the new version.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from clipper.errors import NotFound
from clipper.settings import Settings, get_settings
from clipper.storage import ObjectInfo, open_storage
from tests.fixtures.app import InProcessApp, api_keys_setting, settings_env, upload_source
from tests.fixtures.services import s3_settings
from workers import records
from workers.queues import QUEUE_NAMES, get_queues
from workers.submit.source_stats import SourceStats


class _Library:
    """Just `stat_source`, counting calls; `delay` makes each HEAD slow."""

    def __init__(self, delay: float = 0.0) -> None:
        self.etags: dict[str, str] = {}
        self.calls = 0
        self.delay = delay

    def stat_source(self, key: str) -> ObjectInfo:
        self.calls += 1
        time.sleep(self.delay)
        if key not in self.etags:
            raise NotFound(f"no {key}")
        return ObjectInfo(key, 1, self.etags[key], datetime.now(UTC))


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_remembers_for_ttl_then_asks_again() -> None:
    library, clock = _Library(), _Clock()
    library.etags["a"] = "e1"
    stats = SourceStats(library, 1.0, clock=clock)  # type: ignore[arg-type]
    assert stats.get("a")[0].etag == "e1"
    assert stats.get("a")[1] is False  # from memory
    library.etags["a"] = "e2"
    clock.now += 0.9
    assert stats.get("a")[0].etag == "e1"  # still within the TTL
    assert library.calls == 1
    clock.now += 0.2
    info, fresh = stats.get("a")
    assert (info.etag, fresh) == ("e2", True)
    assert library.calls == 2


def _wait_for_heads(stats: SourceStats, library: _Library, count: int) -> None:
    """Until `count` HEADs were sent and no refresh is still running."""
    deadline = time.monotonic() + 5
    while (library.calls < count or stats._flights) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert library.calls == count


def test_peek_never_asks_and_refreshes_an_entry_in_use_past_half_its_ttl() -> None:
    library, clock = _Library(), _Clock()
    library.etags["a"] = "e1"
    stats = SourceStats(library, 1.0, clock=clock)  # type: ignore[arg-type]
    assert stats.peek("a") is None  # nothing known: no HEAD from peek
    assert library.calls == 0
    stats.get("a")
    library.etags["a"] = "e2"
    clock.now += 0.3
    peeked = stats.peek("a")
    assert peeked is not None and peeked.etag == "e1"
    assert library.calls == 1  # young entry: no refresh
    clock.now += 0.3  # past half the TTL
    peeked = stats.peek("a")
    assert peeked is not None and peeked.etag == "e1"  # still answers at once ...
    _wait_for_heads(stats, library, 2)  # ... and one background HEAD refreshed it
    clock.now += 0.6  # the first entry would have expired by now
    peeked = stats.peek("a")
    assert peeked is not None and peeked.etag == "e2"
    _wait_for_heads(stats, library, 3)  # past half again: refreshed again
    clock.now += 1.0  # unused for a whole TTL: gone
    assert stats.peek("a") is None


def test_ttl_zero_always_asks_and_missing_sources_are_not_remembered() -> None:
    library = _Library()
    stats = SourceStats(library, 0.0)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        stats.get("new")
    library.etags["new"] = "e1"
    assert [stats.get("new")[1] for _ in range(2)] == [True, True]
    assert library.calls == 3
    remembering = SourceStats(library, 60.0)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        remembering.get("later")
    library.etags["later"] = "e9"
    assert remembering.get("later")[0].etag == "e9"  # uploaded just now: visible at once


def test_fresh_and_forget_replace_the_memory() -> None:
    library = _Library()
    library.etags["a"] = "e1"
    stats = SourceStats(library, 60.0)  # type: ignore[arg-type]
    stats.get("a")
    library.etags["a"] = "e2"
    assert stats.fresh("a").etag == "e2"
    info, fresh = stats.get("a")
    assert (info.etag, fresh) == ("e2", False)  # the fresh HEAD replaced the memory
    library.etags["a"] = "e3"
    stats.forget("a")
    assert stats.get("a")[0].etag == "e3"


def test_concurrent_misses_share_one_head() -> None:
    library = _Library(delay=0.2)
    library.etags["a"] = "e1"
    stats = SourceStats(library, 60.0)  # type: ignore[arg-type]
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(stats.get("a")[0].etag)) for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["e1"] * 20
    assert library.calls == 1


def test_a_failed_head_is_not_shared() -> None:
    library = _Library(delay=0.1)
    stats = SourceStats(library, 60.0)  # type: ignore[arg-type]
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            stats.get("missing")
        except NotFound as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 5  # every request gets its own 404
    assert len({id(e) for e in errors}) == 5


def test_least_recently_used_sources_are_dropped() -> None:
    library = _Library()
    library.etags.update(a="1", b="2", c="3")
    stats = SourceStats(library, 60.0, max_entries=2)  # type: ignore[arg-type]
    for key in ("a", "b", "c"):
        stats.get(key)
    assert library.calls == 3
    stats.get("c")
    stats.get("b")
    assert library.calls == 3
    stats.get("a")  # dropped when c came in
    assert library.calls == 4


# --- the whole path: app + worker on real Redis and S3 --------------------------------------


@pytest.fixture
def stale_app(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, s3_server: Any, tmp_path: Path
) -> Iterator[InProcessApp]:
    """The API with a 60 s source memory, and the same settings as the worker's environment."""
    from api.app import create_app

    settings = s3_settings(
        s3_server,
        redis_url=redis_url,
        api_keys=api_keys_setting(),
        work_dir=tmp_path / "work",
        source_stat_ttl_seconds=60.0,
    )
    open_storage(settings).ensure_buckets()
    Redis.from_url(redis_url).flushdb()
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield InProcessApp(settings, create_app(settings))
    get_settings.cache_clear()


def _work(settings: Settings) -> None:
    conn = Redis.from_url(settings.redis_url)
    worker = SimpleWorker(get_queues(QUEUE_NAMES, conn), connection=conn, serializer=JSONSerializer)
    worker.work(burst=True)


def _record(app: InProcessApp, clip_id: str) -> records.ClipRecord:
    record = records.load(app.redis, clip_id)
    assert record is not None
    return record


def test_stale_head_queues_but_the_worker_refuses_the_other_version(
    stale_app: InProcessApp, media_h264_mp4: Any, media_h264_faststart_mp4: Any
) -> None:
    key = f"stale/{uuid.uuid4().hex[:8]}.mp4"
    storage = open_storage(stale_app.settings)
    upload_source(stale_app.settings, key, media_h264_mp4.path)
    old_etag = storage.stat_source(key).etag
    client = stale_app.client()
    assert client.post("/v1/clips", json={"source": key, "start": 1, "end": 2}).status_code == 202
    upload_source(stale_app.settings, key, media_h264_faststart_mp4.path)  # new ETag
    assert storage.stat_source(key).etag != old_etag

    late = client.post("/v1/clips", json={"source": key, "start": 2, "end": 3, "accuracy": "fast"})
    assert late.status_code == 202, late.text
    record = _record(stale_app, late.json()["id"])
    assert record.source_etag == old_etag  # accepted on the remembered HEAD

    _work(stale_app.settings)
    record = _record(stale_app, record.id)
    assert record.status == "failed"
    assert record.error["code"] == "source_changed"
    assert record.error["field"] == "source"
    assert storage.stat_clip(record.object_key) is None  # nothing of the old version stored
    shown = client.get(f"/v1/clips/{record.id}").json()
    assert shown["error"]["code"] == "source_changed"


def test_existing_bytes_are_never_handed_out_for_a_replaced_source(
    stale_app: InProcessApp, media_h264_mp4: Any, media_h264_faststart_mp4: Any
) -> None:
    key = f"dedup/{uuid.uuid4().hex[:8]}.mp4"
    storage = open_storage(stale_app.settings)
    upload_source(stale_app.settings, key, media_h264_mp4.path)
    body = {"source": key, "start": 1, "end": 2, "accuracy": "fast"}
    alice, bob = stale_app.client("alice"), stale_app.client("bob")
    first = alice.post("/v1/clips", json=body)
    assert first.status_code == 202
    _work(stale_app.settings)
    done = _record(stale_app, first.json()["id"])
    assert done.status == "succeeded"
    # Before the replacement both paths answer 200 at once from the memory.
    assert alice.post("/v1/clips", json=body).json()["id"] == done.id
    assert bob.post("/v1/clips", json=body).status_code == 200

    upload_source(stale_app.settings, key, media_h264_faststart_mp4.path)
    new_etag = storage.stat_source(key).etag
    # Alice's own identical request (the join path) and Bob's (the stored-bytes path): both
    # must see the new version and queue a new cut, not get the old clip.
    for client in (alice, bob):
        again = client.post("/v1/clips", json=body)
        assert again.status_code == 202, again.text
        assert again.json()["id"] != done.id
        assert _record(stale_app, again.json()["id"]).source_etag == new_etag


def test_full_video_always_shows_the_current_version(
    stale_app: InProcessApp, media_h264_mp4: Any, media_h264_mkv: Any
) -> None:
    key = f"full/{uuid.uuid4().hex[:8]}.mp4"
    upload_source(stale_app.settings, key, media_h264_mp4.path)
    client = stale_app.client()
    clip = client.post("/v1/clips", json={"source": key, "start": 1, "end": 2}).json()
    assert clip["status"] == "queued"  # the HEAD is now remembered
    upload_source(stale_app.settings, key, media_h264_mkv.path)
    full = client.post("/v1/clips", json={"source": key})
    assert full.status_code == 200
    assert full.json()["result"]["size_bytes"] == media_h264_mkv.path.stat().st_size
    assert media_h264_mkv.path.stat().st_size != media_h264_mp4.path.stat().st_size


def test_concurrent_first_submits_share_one_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of first submits for one new source starts one probe; a failed probe is not
    shared (each request then probes for itself and gets its own error)."""
    from workers import probe_cache

    calls: list[str] = []
    fail = {"bad"}

    def slow_probe(conn: Any, storage: Any, key: str, etag: str, **_: Any) -> Any:
        calls.append(key)
        time.sleep(0.2)
        if key in fail:
            raise NotFound("not media")
        return f"media of {key}@{etag}"

    monkeypatch.setattr(probe_cache, "cached_probe", slow_probe)
    settings = Settings()
    results: list[Any] = []

    def submit(key: str) -> None:
        try:
            results.append(probe_cache.remembered_probe(None, None, settings, key, "e1"))  # type: ignore[arg-type]
        except NotFound as exc:
            results.append(exc)

    for key, expected_calls in ((f"new-{uuid.uuid4().hex}", 1), ("bad", 10)):
        calls.clear()
        results.clear()
        threads = [threading.Thread(target=submit, args=(key,)) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(calls) == expected_calls
        assert len(results) == 10
        if expected_calls == 1:
            assert set(results) == {f"media of {key}@e1"}
        else:
            assert all(isinstance(r, NotFound) for r in results)
