"""The submit path (`workers.submit.submit`): what each case returns, on real Redis and storage.

One result type per case: a new clip is Queued (its job in RQ), the same owner's identical
request Joined, stored bytes of the same content a new Existing clip, the full video a
FullVideo, an Idempotency-Key seen before Replayed; warm mode (the API's event loop) queues
new clips of a remembered source in two Redis round trips and returns NeedsThread, having
written nothing, for everything else. A remembered HEAD that turns out stale is never used
to hand out existing bytes: the submit starts over with a fresh one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.connection
from redis import Redis

from clipper.settings import Settings
from clipper.storage import Storage, open_storage
from tests.fixtures.app import upload_source
from tests.fixtures.services import local_settings, s3_settings
from workers import keys, records
from workers.probe_cache import remembered_probe
from workers.queues import QUEUE_NAMES, get_queue
from workers.records import ClipRecord
from workers.submit import (
    Blocker,
    ClipOrder,
    ClipRequest,
    Existing,
    FullVideo,
    IdempotencyConflict,
    Joined,
    NeedsThread,
    Queued,
    Replayed,
    SubmitContext,
    SubmitMode,
    submit,
)
from workers.submit.source_stats import SourceStats

THREAD, WARM = SubmitMode.THREAD, SubmitMode.WARM


@dataclass
class Service:
    """A submit context on real Redis and storage, with a one-minute source memory."""

    ctx: SubmitContext
    settings: Settings

    @property
    def conn(self) -> Redis:
        return self.ctx.conn

    @property
    def storage(self) -> Storage:
        return self.ctx.storage

    def upload(self, path: Path) -> str:
        key = f"submit/{uuid.uuid4().hex[:8]}/talk{path.suffix}"
        upload_source(self.settings, key, path)
        return key

    def remember(self, key: str) -> None:
        """Put the source's HEAD and probe in this process's memory (what a first submit
        does), writing no clip."""
        assert self.ctx.source_stats is not None
        info, _ = self.ctx.source_stats.get(key)
        remembered_probe(self.conn, self.storage, self.settings, key, info.etag)

    def jobs(self) -> list[str]:
        """Ids of the clip jobs waiting in RQ."""
        return [job_id for name in QUEUE_NAMES for job_id in get_queue(name, self.conn).job_ids]

    def snapshot(self) -> dict[bytes, bytes | None]:
        """Every key in Redis and its serialized value."""
        return {key: self.conn.dump(key) for key in sorted(self.conn.keys("*"))}

    def store_bytes(self, record: ClipRecord, tmp_path: Path) -> dict[str, Any]:
        """What the job does on success: the object in storage, its content record, the
        clip succeeded."""
        path = tmp_path / f"{record.id}.mp4"
        path.write_bytes(b"clip bytes " + record.id.encode())
        self.storage.put_clip(record.object_key, path, metadata={}, content_type="video/mp4")
        result = {"size_bytes": path.stat().st_size, "duration_seconds": 1.0, "accuracy": {}}
        self.conn.set(keys.content(record.content_hash), json.dumps(result))
        assert records.update_if_status(
            self.conn, record.id, ("queued",), status="succeeded", result=result
        )
        return result


@pytest.fixture(params=["local", "s3"])
def service(request: pytest.FixtureRequest, redis_url: str, tmp_path: Path) -> Iterator[Service]:
    # Private callback addresses allowed: the thread mode checks them without a DNS server.
    options: dict[str, Any] = {"redis_url": redis_url, "webhook_allow_private": True}
    if request.param == "s3":
        settings = s3_settings(request.getfixturevalue("s3_server"), **options)
    else:
        settings = local_settings(tmp_path / "storage", **options)
    storage = open_storage(settings)
    storage.ensure_buckets()
    conn = Redis.from_url(redis_url)
    yield Service(SubmitContext(conn, storage, settings, SourceStats(storage, 60.0)), settings)
    conn.close()


def _order(
    key: str, owner: str = "alice", idempotency_key: str | None = None, **fields: Any
) -> ClipOrder:
    """A 1 s clip request unless `fields` say otherwise."""
    request = ClipRequest.model_validate({"source": key, "start": 1, "end": 2, **fields})
    return ClipOrder(owner, request, idempotency_key)


def _full(key: str, owner: str = "alice", **fields: Any) -> ClipOrder:
    return ClipOrder(owner, ClipRequest.model_validate({"source": key, **fields}))


# --- the thread mode: every case -------------------------------------------------------------


def test_a_new_clip_is_queued(service: Service, media_h264_mp4: Any) -> None:
    key = service.upload(media_h264_mp4.path)
    order = _order(key, accuracy="fast", priority="bulk")
    result = submit(service.ctx, order, mode=THREAD)
    assert isinstance(result, Queued)
    assert result.status_code == 202
    stored = records.load(service.conn, result.record.id)
    assert stored == result.record
    assert (stored.status, stored.kind, stored.queue) == ("queued", "clip", "bulk")
    assert stored.request == order.request.model_dump(mode="json")
    assert stored.source_etag == service.storage.stat_source(key).etag
    assert service.jobs() == [stored.id]  # the RQ job id is the clip id


def test_an_identical_request_joins_the_owners_clip(
    service: Service, media_h264_mp4: Any, tmp_path: Path
) -> None:
    key = service.upload(media_h264_mp4.path)
    first = submit(service.ctx, _order(key), mode=THREAD)
    again = submit(service.ctx, _order(key), mode=THREAD)
    assert isinstance(again, Joined)
    assert (again.record.id, again.status_code) == (first.record.id, 202)
    assert service.jobs() == [first.record.id]  # no second job
    service.store_bytes(first.record, tmp_path)
    done = submit(service.ctx, _order(key), mode=THREAD)
    assert isinstance(done, Joined)
    assert (done.record.id, done.record.status, done.status_code) == (
        first.record.id,
        "succeeded",
        200,
    )
    # Another file name is another request of the same bytes: not joined.
    renamed = submit(service.ctx, _order(key, filename="other.mp4"), mode=THREAD)
    assert isinstance(renamed, Existing)


def test_stored_bytes_are_deduplicated_into_a_clip_of_ones_own(
    service: Service, media_h264_mp4: Any, tmp_path: Path
) -> None:
    key = service.upload(media_h264_mp4.path)
    alices = submit(service.ctx, _order(key), mode=THREAD)
    result = service.store_bytes(alices.record, tmp_path)
    bobs = submit(service.ctx, _order(key, owner="bob"), mode=THREAD)
    assert isinstance(bobs, Existing)
    assert bobs.status_code == 200
    assert bobs.record.id != alices.record.id  # clips stay private
    assert (bobs.record.owner, bobs.record.status) == ("bob", "succeeded")
    assert bobs.record.object_key == alices.record.object_key  # the bytes are shared
    assert bobs.record.result == result
    assert records.load(service.conn, bobs.record.id) == bobs.record
    assert service.jobs() == [alices.record.id]
    # Once the object is gone from storage, the same request is cut again.
    service.storage.delete_clip(alices.record.object_key)
    carol = submit(service.ctx, _order(key, owner="carol"), mode=THREAD)
    assert isinstance(carol, Queued)


def test_the_full_video_links_the_source(service: Service, media_h264_mp4: Any) -> None:
    key = service.upload(media_h264_mp4.path)
    result = submit(service.ctx, _full(key), mode=THREAD)
    assert isinstance(result, FullVideo)
    assert result.status_code == 200
    record = result.record
    assert (record.status, record.kind, record.bucket, record.object_key) == (
        "succeeded",
        "source",
        "sources",
        key,
    )
    assert record.result["size_bytes"] == media_h264_mp4.path.stat().st_size
    assert service.jobs() == []
    again = submit(service.ctx, _full(key), mode=THREAD)
    assert isinstance(again, Joined)
    assert (again.record.id, again.status_code) == (record.id, 200)
    # Another format is a cut, not the source itself.
    assert isinstance(submit(service.ctx, _full(key, preset="mp4"), mode=THREAD), Queued)


def test_an_idempotency_key_replays_the_first_answer(service: Service, media_h264_mp4: Any) -> None:
    key = service.upload(media_h264_mp4.path)
    first = submit(service.ctx, _order(key, idempotency_key="order-1"), mode=THREAD)
    assert isinstance(first, Queued)
    again = submit(service.ctx, _order(key, idempotency_key="order-1"), mode=THREAD)
    assert isinstance(again, Replayed)
    assert (again.record.id, again.status_code) == (first.record.id, 202)
    with pytest.raises(IdempotencyConflict) as refused:
        submit(service.ctx, _order(key, idempotency_key="order-1", end=3), mode=THREAD)
    assert refused.value.field == "Idempotency-Key"
    assert service.jobs() == [first.record.id]


# --- warm mode: Redis only, or NeedsThread having written nothing ----------------------------


def test_warm_mode_queues_a_new_clip_in_two_round_trips(
    service: Service, media_h264_mp4: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = service.upload(media_h264_mp4.path)
    service.remember(key)
    # Once, so the connection is open and the Lua script loaded: what a busy API has.
    assert isinstance(submit(service.ctx, _order(key, start=0, end=1), mode=WARM), Queued)
    sent: list[bytes] = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sent.append(command)
        send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    result = submit(service.ctx, _order(key, accuracy="fast", priority="bulk"), mode=WARM)
    monkeypatch.undo()
    assert isinstance(result, Queued)
    assert len(sent) == 2  # the claim script, then the job and the counter in one MULTI
    # The same record the thread mode makes.
    order = _order(key, start=2, end=3, accuracy="fast", priority="bulk")
    threaded = submit(service.ctx, order, mode=THREAD)
    assert isinstance(threaded, Queued)
    for name in ("status", "kind", "queue", "source_etag", "clip_seconds", "timeout_seconds"):
        assert getattr(result.record, name) == getattr(threaded.record, name), name
    assert records.load(service.conn, result.record.id) == result.record
    assert result.record.id in service.jobs()


@pytest.mark.parametrize(
    ("case", "blocker"),
    [
        ("idempotency_key", Blocker.IDEMPOTENCY_KEY),
        ("callback_url", Blocker.CALLBACK_URL),
        ("full_video", Blocker.FULL_VIDEO),
        ("cold_source", Blocker.COLD_SOURCE),
        ("identical_clip", Blocker.EXISTING_CLIP),
        ("stored_bytes", Blocker.EXISTING_CLIP),
    ],
)
def test_warm_mode_needs_a_thread_for_what_may_block_and_writes_nothing(
    service: Service, media_h264_mp4: Any, tmp_path: Path, case: str, blocker: Blocker
) -> None:
    key = service.upload(media_h264_mp4.path)
    if case != "cold_source":
        service.remember(key)
    order = {
        "idempotency_key": _order(key, idempotency_key="order-1"),
        "callback_url": _order(key, callback_url="http://127.0.0.1:9/hook"),
        "full_video": _full(key),
        "stored_bytes": _order(key, owner="bob"),
    }.get(case, _order(key))
    if case in ("identical_clip", "stored_bytes"):
        alices = submit(service.ctx, _order(key), mode=THREAD)
        if case == "stored_bytes":
            service.store_bytes(alices.record, tmp_path)
    before = service.snapshot()
    assert submit(service.ctx, order, mode=WARM) == NeedsThread(blocker)
    assert service.snapshot() == before
    # The same order in a thread gets its answer.
    assert not isinstance(submit(service.ctx, order, mode=THREAD), NeedsThread)


def test_warm_mode_refuses_bad_requests_like_the_thread_mode(
    service: Service, media_h264_mp4: Any
) -> None:
    from clipper.errors import BadRequest, UnsafeInput

    key = service.upload(media_h264_mp4.path)
    service.remember(key)
    for bad, error, field in (
        (_order("../etc/passwd"), UnsafeInput, "source"),
        (_order(key, filename='a"b.mp4'), UnsafeInput, "filename"),
        (_order(key, start=3, end=2), BadRequest, "end"),
    ):
        for mode in (WARM, THREAD):
            before = service.snapshot()
            with pytest.raises(error) as refused:
                submit(service.ctx, bad, mode=mode)
            assert refused.value.field == field
            assert service.snapshot() == before


# --- a stale memory of the source ---------------------------------------------------------


@pytest.mark.parametrize("path", ["stored_bytes", "join"])
def test_a_stale_head_never_hands_out_bytes_of_the_old_version(
    service: Service,
    media_h264_mp4: Any,
    media_h264_faststart_mp4: Any,
    tmp_path: Path,
    path: str,
) -> None:
    """Alice's clip of the first version is stored; the source is replaced while this
    process still remembers the old HEAD. Bob's identical request (found through the stored
    bytes) and Alice's (through her join key, once the content record is gone) both look
    again, start over and queue a cut of the new version."""
    key = service.upload(media_h264_mp4.path)
    first = submit(service.ctx, _order(key), mode=THREAD)
    service.store_bytes(first.record, tmp_path)
    asker = "bob" if path == "stored_bytes" else "alice"
    if path == "join":
        service.conn.delete(keys.content(first.record.content_hash))
        assert isinstance(submit(service.ctx, _order(key), mode=THREAD), Joined)
    old_etag = first.record.source_etag
    upload_source(service.settings, key, media_h264_faststart_mp4.path)
    new_etag = service.storage.stat_source(key).etag
    assert new_etag != old_etag
    assert service.ctx.source_stats is not None
    assert service.ctx.source_stats.get(key)[0].etag == old_etag  # the memory is stale

    again = submit(service.ctx, _order(key, owner=asker), mode=THREAD)
    assert isinstance(again, Queued)
    assert again.record.id != first.record.id
    assert again.record.source_etag == new_etag
    assert service.ctx.source_stats.get(key)[0].etag == new_etag  # the memory was corrected
    # The full video always shows the current version.
    full = submit(service.ctx, _full(key, owner=asker, filename="full.mp4"), mode=THREAD)
    assert isinstance(full, FullVideo)
    assert full.record.source_etag == new_etag
    assert full.record.result["size_bytes"] == media_h264_faststart_mp4.path.stat().st_size
