"""The clip record a submit proposes, before Redis makes it the owner's clip.

Pure given the source as the submit saw it (`SourceSeen`): frame ranges, length limit,
content and join hashes, object key, file name, job timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clipper import engine
from clipper.engine import MediaInfo
from clipper.errors import BadRequest
from clipper.settings import Settings
from clipper.spec import CutSpec, Preset
from clipper.storage import ObjectInfo
from workers import records
from workers.queues import job_timeout_seconds
from workers.records import ClipRecord
from workers.submit.claim import Draft
from workers.submit.clipspec import content_hash, default_filename, join_hash, ranges_seconds
from workers.submit.request import ClipOrder


@dataclass
class SourceSeen:
    """The source version as this submit saw it, and whether its HEAD is known current."""

    key: str
    info: ObjectInfo
    media: MediaInfo
    fresh: bool  # straight from storage, or confirmed since


def full_video(order: ClipOrder, source: SourceSeen, spec: CutSpec) -> Draft:
    """A `succeeded` clip that links the source object itself."""
    request = order.request
    chash = content_hash(source_key=source.key, source_etag=source.info.etag, ranges=[], spec=spec)
    filename = request.filename or default_filename(source.key, request, "")
    callback_url = request.callback_url or ""
    record = ClipRecord(
        id=records.new_clip_id(),
        owner=order.owner,
        status="succeeded",
        kind="source",
        request=request.model_dump(mode="json"),
        source_key=source.key,
        source_etag=source.info.etag,
        bucket="sources",
        object_key=source.key,
        filename=filename,
        content_hash=chash,
        callback_url=callback_url,
        result={
            "size_bytes": source.info.size_bytes,
            "duration_seconds": source.media.duration_seconds,
        },
        finished_at=records.now_iso(),
    )
    return Draft(record, join_hash(chash, filename=filename, callback_url=callback_url))


def clip(settings: Settings, order: ClipOrder, source: SourceSeen, spec: CutSpec) -> Draft:
    """A `queued` clip to cut; BadRequest when its ranges are invalid or too long."""
    request = order.request
    ranges = list(engine.resolve_ranges(source.media, spec))
    clip_seconds = ranges_seconds(ranges, source.media)
    if clip_seconds > settings.max_clip_seconds:
        raise BadRequest(
            f"the clip is {clip_seconds:.3f} s long; the limit is {settings.max_clip_seconds:g} s",
            field="segments" if request.segments else "end",
        )
    ext = engine.output_extension(source.media, spec.preset)
    chash = content_hash(
        source_key=source.key, source_etag=source.info.etag, ranges=ranges, spec=spec
    )
    filename = request.filename or default_filename(source.key, request, ext)
    callback_url = request.callback_url or ""
    record = ClipRecord(
        id=records.new_clip_id(),
        owner=order.owner,
        status="queued",
        kind="clip",
        request=request.model_dump(mode="json"),
        source_key=source.key,
        source_etag=source.info.etag,
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
    return Draft(record, join_hash(chash, filename=filename, callback_url=callback_url))


def succeed(record: ClipRecord, result: dict[str, Any]) -> None:
    """Make the draft a clip of bytes already stored (their content record): done at once."""
    record.status = "succeeded"
    record.result = result
    record.finished_at = records.now_iso()
