"""Probe a source once per version: the result is cached in Redis by source key and ETag.

Every ffprobe of a remote MP4 re-reads its whole index (~1.1 KB per second of media), so the
API (validating ranges) and the worker (planning the cut) share one cached probe.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict

from redis import Redis

from clipper import engine
from clipper.engine import EngineConfig, MediaInfo
from clipper.settings import Settings
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


#: Probe results kept per process (the API's submits). A (source key, ETag) names one
#: immutable version of a source, so a remembered MediaInfo never goes stale; it saves a Redis
#: read and the JSON decoding on every submit.
PROBE_MEMO_SIZE = 64
_probe_memo: OrderedDict[tuple[str, str], MediaInfo] = OrderedDict()
_probe_memo_lock = threading.Lock()
_probe_flights: dict[tuple[str, str], threading.Event] = {}
#: Longest a submit waits for another request's probe of the same source before its own.
PROBE_WAIT_SECONDS = 120.0


def peek_probe(key: str, etag: str) -> MediaInfo | None:
    """This process's probe of that source version, if it has one (never probes)."""
    with _probe_memo_lock:
        return _probe_memo.get((key, etag))


def remembered_probe(
    conn: Redis, storage: Storage, settings: Settings, key: str, etag: str
) -> MediaInfo:
    """The probe of this source version: this process's memo, else the Redis cache or ffprobe.

    Concurrent first submits of one new source wait for a single probe (a burst of 50 used
    to start 50 ffprobes of the same file); if it fails, each runs its own, so each gets its
    own error.
    """
    version = (key, etag)
    with _probe_memo_lock:
        media = _probe_memo.get(version)
        if media is not None:
            _probe_memo.move_to_end(version)
            return media
        flight = _probe_flights.get(version)
        leader = flight is None
        if flight is None:
            flight = _probe_flights[version] = threading.Event()
    if not leader:
        flight.wait(PROBE_WAIT_SECONDS)
        with _probe_memo_lock:
            media = _probe_memo.get(version)
        if media is not None:
            return media
    try:
        media = cached_probe(conn, storage, key, etag, config=EngineConfig.from_settings(settings))
        with _probe_memo_lock:
            _probe_memo[version] = media
            while len(_probe_memo) > PROBE_MEMO_SIZE:
                _probe_memo.popitem(last=False)
        return media
    finally:
        if leader:
            with _probe_memo_lock:
                _probe_flights.pop(version, None)
            flight.set()
