"""Turning an accepted request into a clip: validation against the source, dedup, enqueue.

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

`Idempotency-Key`: same key + same body → the first answer's status code and the same clip;
same key + different body → 422.

The source's HEAD may come from `workers.source_stats` (a second-old memory) for a clip that
gets queued: the worker checks the ETag again. Before any answer that hands out existing
bytes at once (200) the HEAD is repeated, so a replaced source never gets an old clip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis import Redis

from clipper import engine
from clipper.engine import MediaInfo
from clipper.errors import BadRequest, NotFound, UnsafeInput
from clipper.settings import Settings
from clipper.spec import Preset
from clipper.storage import ObjectInfo, Storage, validate_key
from workers import keys, records
from workers.probe_cache import remembered_probe
from workers.queues import job_timeout_seconds
from workers.records import ClipRecord
from workers.submit.claim import NeedsThread, SourceSeen, StaleSource, Submission, claim
from workers.submit.clipspec import (
    body_hash,
    content_hash,
    default_filename,
    join_hash,
    ranges_seconds,
    validate_filename,
)
from workers.submit.request import ClipRequest
from workers.submit.source_stats import SourceStats
from workers.webhooks import validate_callback_url


class IdempotencyConflict(BadRequest):
    """The Idempotency-Key was used before with a different body."""

    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Warm:
    """A source version whose HEAD and probe this process already holds in memory."""

    info: ObjectInfo
    media: MediaInfo


def submit_clip(
    *,
    conn: Redis,
    storage: Storage,
    settings: Settings,
    owner: str,
    request: ClipRequest,
    idempotency_key: str | None = None,
    source_stats: SourceStats | None = None,
) -> Submission:
    """Validate, dedup and (when needed) enqueue one clip request.

    `source_stats` (the API's) lets a queued clip use a recent HEAD of the source; without
    it every submit asks storage.
    """
    idem_key = keys.idempotency(owner, idempotency_key) if idempotency_key else None
    digest = body_hash(request.model_dump(mode="json")) if idem_key else ""
    if idem_key:
        remembered = _remembered(conn, idem_key, digest)
        if remembered:
            return remembered
    try:
        submission = _submit(conn, storage, settings, owner, request, source_stats)
    except StaleSource:
        # The source was replaced within the memory's TTL: once more, asking storage.
        submission = _submit(conn, storage, settings, owner, request, None)
    if idem_key:
        entry: dict[str, str | int] = {
            "body_sha256": digest,
            "status_code": submission.status_code,
            "clip_id": submission.record.id,
        }
        if not conn.set(idem_key, json.dumps(entry), nx=True, ex=keys.IDEMPOTENCY_TTL_SECONDS):
            return _remembered(conn, idem_key, digest) or submission
    return submission


def submit_warm(
    *,
    conn: Redis,
    storage: Storage,
    settings: Settings,
    owner: str,
    request: ClipRequest,
    warm: Warm,
    source_stats: SourceStats,
) -> Submission:
    """`submit_clip` for a new clip of a warm source, blocking on nothing but Redis (two
    round trips): for the API's event loop. Raises NeedsThread, having written nothing, for
    every other case (callback URL, full video, an identical or stored clip)."""
    return _submit(conn, storage, settings, owner, request, source_stats, warm=warm)


def _remembered(conn: Redis, idem_key: str, digest: str) -> Submission | None:
    raw = conn.get(idem_key)
    if not raw:
        return None
    entry = json.loads(raw)  # type: ignore[arg-type]
    if entry["body_sha256"] != digest:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used with a different request body",
            field="Idempotency-Key",
        )
    record = records.load(conn, entry["clip_id"])
    return Submission(int(entry["status_code"]), record) if record else None


def _stat(storage: Storage, stats: SourceStats | None, key: str, *, fresh: bool) -> SourceSeen:
    try:
        if stats is None:
            return SourceSeen(key, storage.stat_source(key), True, None)
        if fresh:
            return SourceSeen(key, stats.fresh(key), True, stats)
        info, was_fresh = stats.get(key)
        return SourceSeen(key, info, was_fresh, stats)
    except NotFound as exc:
        raise NotFound(f"no source with key {key!r}", field="source") from exc


def _submit(
    conn: Redis,
    storage: Storage,
    settings: Settings,
    owner: str,
    request: ClipRequest,
    stats: SourceStats | None,
    *,
    warm: Warm | None = None,
) -> Submission:
    try:
        source_key = validate_key(request.source)
    except UnsafeInput as exc:
        raise UnsafeInput(exc.message, field="source") from exc
    if request.filename is not None:
        validate_filename(request.filename)
    callback_url = request.callback_url or ""
    if callback_url and warm is not None:
        raise NeedsThread  # the check resolves the host name
    if callback_url:
        validate_callback_url(callback_url, allow_private=settings.webhook_allow_private)
    spec = request.cut_spec()
    stored_request = request.model_dump(mode="json")
    full_video = spec.is_full_video and spec.preset == Preset.ORIGINAL
    if warm is not None:
        if full_video:
            raise NeedsThread  # answered at once: its HEAD must be fresh
        source = SourceSeen(source_key, warm.info, False, stats)
        info, media = warm.info, warm.media
    else:
        # A full video is answered at once (200): its HEAD must be current.
        source = _stat(storage, stats, source_key, fresh=full_video)
        info = source.info
        media = remembered_probe(conn, storage, settings, source_key, info.etag)

    if full_video:
        chash = content_hash(source_key=source_key, source_etag=info.etag, ranges=[], spec=spec)
        filename = request.filename or default_filename(source_key, request, "")
        record = ClipRecord(
            id=records.new_clip_id(),
            owner=owner,
            status="succeeded",
            kind="source",
            request=stored_request,
            source_key=source_key,
            source_etag=info.etag,
            bucket="sources",
            object_key=source_key,
            filename=filename,
            content_hash=chash,
            callback_url=callback_url,
            result={"size_bytes": info.size_bytes, "duration_seconds": media.duration_seconds},
            finished_at=records.now_iso(),
        )
        jhash = join_hash(chash, filename=filename, callback_url=callback_url)
        return claim(conn, storage, record, jhash, source)

    ranges = list(engine.resolve_ranges(media, spec))
    clip_seconds = ranges_seconds(ranges, media)
    if clip_seconds > settings.max_clip_seconds:
        field = "segments" if request.segments else "end"
        raise BadRequest(
            f"the clip is {clip_seconds:.3f} s long; the limit is {settings.max_clip_seconds:g} s",
            field=field,
        )
    ext = engine.output_extension(media, spec.preset)
    chash = content_hash(source_key=source_key, source_etag=info.etag, ranges=ranges, spec=spec)
    filename = request.filename or default_filename(source_key, request, ext)
    record = ClipRecord(
        id=records.new_clip_id(),
        owner=owner,
        status="queued",
        kind="clip",
        request=stored_request,
        source_key=source_key,
        source_etag=info.etag,
        bucket="clips",
        object_key=f"{chash[:2]}/{chash}{ext}",
        filename=filename,
        content_hash=chash,
        callback_url=callback_url,
        queue=request.priority,
        clip_seconds=clip_seconds,
        timeout_seconds=job_timeout_seconds(clip_seconds, transcode=spec.preset != Preset.ORIGINAL),
        progress={"phase": "queued", "percent": 0.0, "eta_seconds": None},
    )
    jhash = join_hash(chash, filename=filename, callback_url=callback_url)
    return claim(conn, storage, record, jhash, source, check_content=True, inline=bool(warm))
