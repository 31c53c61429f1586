"""Probe a source once per version: the result is cached in Redis by source key and ETag.

Every ffprobe of a remote MP4 re-reads its whole index (~1.1 KB per second of media), so the
API (validating ranges) and the worker (planning the cut) share one cached probe.
"""

from __future__ import annotations

import json

from redis import Redis

from clipper import engine
from clipper.engine import EngineConfig, MediaInfo
from clipper.storage import Storage
from workers import keys

#: A probe link only needs to live as long as ffprobe runs.
PROBE_LINK_TTL_SECONDS = 600


def cached_probe(
    conn: Redis,
    storage: Storage,
    source_key: str,
    etag: str,
    *,
    config: EngineConfig,
    input_url: str | None = None,
) -> MediaInfo:
    """MediaInfo of this version of the source, from the cache or a fresh probe."""
    cache_key = keys.probe(source_key, etag)
    cached = conn.get(cache_key)
    if cached:
        return MediaInfo.from_dict(json.loads(cached))  # type: ignore[arg-type]
    url = input_url or storage.source_input_url(source_key, ttl_seconds=PROBE_LINK_TTL_SECONDS)
    media = engine.probe(url, config=config)
    conn.set(cache_key, json.dumps(media.to_dict()), ex=keys.PROBE_TTL_SECONDS)
    return media
