"""/v1/sources: list the library and probe one source."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from api.deps import ClientDep, RedisDep, SettingsDep, StorageDep
from api.models import SourceDetail, SourceItem, SourceList
from clipper import engine
from clipper.engine import EngineConfig
from clipper.errors import NotFound, UnsafeInput
from clipper.storage import validate_key
from clipper.storage.base import validate_prefix
from workers.probe_cache import PROBE_LINK_TTL_SECONDS, cached_probe

router = APIRouter(prefix="/v1", tags=["sources"])

#: Most points one probe looks for keyframes around.
MAX_NEAR_POINTS = 10
#: Longest source time a point may name (a week of media; longer is never a real source).
MAX_NEAR_SECONDS = 7 * 24 * 3600.0

#: A point of `?near=`: finite seconds from the first frame, validated like the body's times.
NearPoint = Annotated[float, Field(ge=0, le=MAX_NEAR_SECONDS, allow_inf_nan=False)]


@router.get("/sources", response_model=SourceList)
def list_sources(
    _: ClientDep,
    storage: StorageDep,
    prefix: Annotated[str, Query(max_length=1024)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> SourceList:
    """Sources whose key starts with `prefix`, sorted by key."""
    try:
        validate_prefix(prefix)
    except UnsafeInput as exc:
        raise UnsafeInput(exc.message, field="prefix") from exc
    items = [
        SourceItem(
            key=o.key,
            size_bytes=o.size_bytes,
            etag=o.etag,
            last_modified=o.last_modified.isoformat(),
        )
        for o in storage.list_sources(prefix, limit=limit)
    ]
    return SourceList(prefix=prefix, items=items)


@router.get("/sources/{key:path}", response_model=SourceDetail)
def get_source(
    key: str,
    _: ClientDep,
    conn: RedisDep,
    storage: StorageDep,
    settings: SettingsDep,
    near: Annotated[
        list[NearPoint] | None,
        Query(max_length=MAX_NEAR_POINTS, description="seconds; repeatable, at most 10"),
    ] = None,
) -> SourceDetail:
    """Probe one source: duration, streams, frame rate, start timecode, keyframes near ?near=T."""
    try:
        validate_key(key)
    except UnsafeInput as exc:
        raise UnsafeInput(exc.message, field="key") from exc
    try:
        info = storage.stat_source(key)
    except NotFound as exc:
        raise NotFound(f"no source with key {key!r}", field="key") from exc
    config = EngineConfig.from_settings(settings)
    media = cached_probe(conn, storage, key, info.etag, config=config)
    keyframes: dict[str, list[float]] = {}
    if near:
        url = storage.source_input_url(key, ttl_seconds=PROBE_LINK_TTL_SECONDS)
        found = engine.keyframes_near(url, media, list(near), config=config)
        # One sorted list for all points: callers pick the ones around each point.
        keyframes = {f"{t:g}": [k for k in found if abs(k - t) <= 30.0] for t in near}
    data: dict[str, Any] = media.to_dict()
    return SourceDetail(
        key=key,
        size_bytes=info.size_bytes,
        etag=info.etag,
        duration_seconds=media.duration_seconds,
        frame_rate=f"{media.frame_rate.numerator}/{media.frame_rate.denominator}",
        start_timecode=media.start_timecode,
        media=data,
        keyframes_near=keyframes,
    )
