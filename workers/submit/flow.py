"""`submit(...)`: an accepted request becomes a clip: validation against the source, dedup,
enqueue. Its result type says what happened (`workers.submit.results`).

Dedup works at two levels:

- **Bytes** (`content_hash` = sha256 of source key, source ETag, exact frame ranges,
  accuracy, preset) name the stored object `clips/<hash><ext>`. The object is shared by every
  client; a request whose object already exists gets a `succeeded` clip at once (200).
- **Requests** (`join_hash` = content + filename + callback_url) are per owner: an identical
  request from the same API key while one is queued or running joins it (same clip id, 202);
  once it succeeded, the same clip comes back (200). Another key never sees that clip id —
  it gets its own clip (a new id) that points at the shared object, so clips stay private
  while the bytes are cut once. The join is a `SET NX` (or a Lua compare-and-set replacing a
  failed/canceled clip), so concurrent identical requests cannot create two jobs.

`Idempotency-Key`: see `workers.submit.idempotency`.

The source's HEAD may come from `workers.submit.source_stats` (a second-old memory) for a clip
that gets queued: the worker checks the ETag again. Before any answer that hands out existing
bytes at once (200) the HEAD is repeated, so a replaced source never gets an old clip: when
it shows another ETag, the submit starts over asking storage.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, overload

from redis import Redis

from clipper.errors import BadRequest, NotFound, UnsafeInput
from clipper.settings import Settings
from clipper.spec import CutSpec, Preset
from clipper.storage import Storage, validate_key
from workers import records
from workers.probe_cache import peek_probe, remembered_probe
from workers.records import ClipRecord
from workers.submit import drafts, idempotency
from workers.submit.claim import ContentKnown, Draft, Saved, claim, publish
from workers.submit.clipspec import validate_filename
from workers.submit.drafts import SourceSeen
from workers.submit.request import ClipOrder, ClipRequest
from workers.submit.results import (
    Blocker,
    Existing,
    FullVideo,
    Joined,
    NeedsThread,
    Queued,
    SubmitResult,
    Submitted,
)
from workers.submit.source_stats import SourceStats
from workers.webhooks import validate_callback_url

#: Tries at claiming a request against concurrent identical ones before a 422 "retry".
CLAIM_TRIES = 6


class SubmitMode(StrEnum):
    """Where a submit runs, and so what it may wait for."""

    #: On the API's event loop: the source's HEAD and probe from this process's memory, then
    #: two Redis round trips; NeedsThread (nothing written) on meeting anything else.
    WARM = "warm"
    #: In a thread: may HEAD the source, probe it, look in storage, resolve the callback host.
    THREAD = "thread"


@dataclass(frozen=True)
class SubmitContext:
    """What every submit of a process uses."""

    conn: Redis
    storage: Storage
    settings: Settings
    #: The API's memory of source HEADs; None: every submit asks storage.
    source_stats: SourceStats | None = None


@dataclass(frozen=True)
class StaleSource:
    """The remembered HEAD of the source is out of date: start over with a fresh one."""


@overload
def submit(
    ctx: SubmitContext, order: ClipOrder, *, mode: Literal[SubmitMode.WARM]
) -> Queued | NeedsThread: ...
@overload
def submit(
    ctx: SubmitContext, order: ClipOrder, *, mode: Literal[SubmitMode.THREAD]
) -> Submitted: ...
def submit(ctx: SubmitContext, order: ClipOrder, *, mode: SubmitMode) -> SubmitResult:
    """Validate, dedup and (when needed) queue one clip request.

    WARM blocks on nothing but Redis and only ever queues a new clip; THREAD covers every
    case. Errors (bad request, unsafe input, missing source, Redis or storage trouble) raise.
    """
    if mode is SubmitMode.WARM:
        return _warm(ctx, order)
    return _in_thread(ctx, order)


def warm_source(ctx: SubmitContext, key: str) -> SourceSeen | None:
    """The source as this process remembers it (HEAD and probe), or None; never blocks."""
    info = ctx.source_stats.peek(key) if ctx.source_stats is not None else None
    media = peek_probe(key, info.etag) if info is not None else None
    if info is None or media is None:
        return None
    return SourceSeen(key, info, media, fresh=False)


def _warm(ctx: SubmitContext, order: ClipOrder) -> Queued | NeedsThread:
    request = order.request
    if order.idempotency_key is not None:  # an empty one too (the thread path ignores it)
        return NeedsThread(Blocker.IDEMPOTENCY_KEY)
    if request.callback_url:
        return NeedsThread(Blocker.CALLBACK_URL)
    source_key = _checked_source_key(request)
    spec = request.cut_spec()
    if _is_full_video(spec):
        return NeedsThread(Blocker.FULL_VIDEO)
    source = warm_source(ctx, source_key)
    if source is None:
        return NeedsThread(Blocker.COLD_SOURCE)
    draft = drafts.clip(ctx.settings, order, source, spec)
    if not isinstance(claim(ctx.conn, draft, look_for_content=True), Saved):
        return NeedsThread(Blocker.EXISTING_CLIP)  # the script wrote nothing
    publish(ctx.conn, draft.record)
    return Queued(draft.record)


def _in_thread(ctx: SubmitContext, order: ClipOrder) -> Submitted:
    key = order.idempotency_key
    if not key:  # an empty header is no key
        return _decided(ctx, order)
    entry = idempotency.Idempotency.of(order, key)
    replayed = idempotency.replay(ctx.conn, entry)
    if replayed is not None:
        return replayed
    return idempotency.remember(ctx.conn, entry, _decided(ctx, order))


def _decided(ctx: SubmitContext, order: ClipOrder) -> Submitted:
    outcome = _attempt(ctx, order)
    if isinstance(outcome, StaleSource):
        # The source was replaced within the memory's TTL: once more, asking storage (a HEAD
        # straight from storage is current, so this attempt cannot be stale).
        outcome = _attempt(dataclasses.replace(ctx, source_stats=None), order)
    assert not isinstance(outcome, StaleSource)
    return outcome


def _attempt(ctx: SubmitContext, order: ClipOrder) -> Submitted | StaleSource:
    request = order.request
    source_key = _checked_source_key(request)
    if request.callback_url:
        validate_callback_url(
            request.callback_url, allow_private=ctx.settings.webhook_allow_private
        )
    spec = request.cut_spec()
    if _is_full_video(spec):
        # Answered at once (200): its HEAD must be current.
        source = _look_up(ctx, source_key, fresh=True)
        return _claimed(ctx, drafts.full_video(order, source, spec), source, look_for_content=False)
    source = _look_up(ctx, source_key, fresh=False)
    draft = drafts.clip(ctx.settings, order, source, spec)
    return _claimed(ctx, draft, source, look_for_content=True)


def _checked_source_key(request: ClipRequest) -> str:
    """The request's source key and file name, refused if unsafe."""
    try:
        source_key = validate_key(request.source)
    except UnsafeInput as exc:
        raise UnsafeInput(exc.message, field="source") from exc
    if request.filename is not None:
        validate_filename(request.filename)
    return source_key


def _is_full_video(spec: CutSpec) -> bool:
    """The whole source in its own format: no cut, a link to the source itself."""
    return spec.is_full_video and spec.preset == Preset.ORIGINAL


def _look_up(ctx: SubmitContext, key: str, *, fresh: bool) -> SourceSeen:
    """The source's HEAD (from the memory unless `fresh`) and its probe."""
    stats = ctx.source_stats
    try:
        if stats is None:
            info, was_fresh = ctx.storage.stat_source(key), True
        elif fresh:
            info, was_fresh = stats.fresh(key), True
        else:
            info, was_fresh = stats.get(key)
    except NotFound as exc:
        raise NotFound(f"no source with key {key!r}", field="source") from exc
    media = remembered_probe(ctx.conn, ctx.storage, ctx.settings, key, info.etag)
    return SourceSeen(key, info, media, was_fresh)


def _confirmed(ctx: SubmitContext, source: SourceSeen) -> bool:
    """Before existing bytes are handed out: a fresh HEAD must show the same ETag."""
    if source.fresh or ctx.source_stats is None:
        return True
    current = ctx.source_stats.fresh(source.key)
    source.fresh = True
    return current.etag == source.info.etag


def _claimed(
    ctx: SubmitContext, draft: Draft, source: SourceSeen, *, look_for_content: bool
) -> Submitted | StaleSource:
    """Claim the draft in Redis, looking in storage at what Redis says exists."""
    record = draft.record
    replace = ""
    stored_object = ""  # an object this submit has just seen in storage: no second look
    for _ in range(CLAIM_TRIES):
        outcome = claim(ctx.conn, draft, look_for_content=look_for_content, replace=replace)
        if isinstance(outcome, Saved):
            publish(ctx.conn, record)
            return _new(record)
        if isinstance(outcome, ContentKnown):
            look_for_content = False
            if ctx.storage.stat_clip(record.object_key) is not None:
                if not _confirmed(ctx, source):
                    return StaleSource()
                # The bytes exist already (cut for this or another client): done at once.
                drafts.succeed(record, outcome.result)
                stored_object = record.object_key
            continue
        joined = _joined(ctx, outcome.clip_id, source, stored_object)
        if joined is not None:
            return joined
        replace = outcome.clip_id  # failed, canceled or expired: replace it on the next try
    raise BadRequest("too many concurrent identical requests; retry", field="source")


def _new(record: ClipRecord) -> Queued | Existing | FullVideo:
    if record.kind == "source":
        return FullVideo(record)
    return Existing(record) if record.status == "succeeded" else Queued(record)


def _joined(
    ctx: SubmitContext, clip_id: str, source: SourceSeen, stored_object: str
) -> Joined | StaleSource | None:
    """The owner's clip the join key names, if it still serves; None: replace it."""
    existing = records.load(ctx.conn, clip_id)
    if existing is None or not _still_good(ctx.storage, existing, stored_object):
        return None
    if existing.status == "succeeded" and not _confirmed(ctx, source):
        return StaleSource()  # its bytes are of the ETag this submit saw, not the current one
    return Joined(existing)


def _still_good(storage: Storage, record: ClipRecord, stored_object: str) -> bool:
    if record.status in records.ACTIVE:
        return True
    if record.status != "succeeded":
        return False  # failed or canceled: a new request deserves a new try
    if record.kind == "source" or record.object_key == stored_object:
        return True
    return storage.stat_clip(record.object_key) is not None
