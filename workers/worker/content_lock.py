"""One cut per content: jobs for the same bytes (same content hash) do not cut twice.

Different clients never share a clip id, so two clients asking for the same frames at the
same time get two jobs. The first takes `clipper:cutting:{content_hash}` (SET NX, expiring
with its job timeout) and cuts; the others wait until the content record appears and then
succeed with the stored object, or — if the holder fails, is canceled or dies — take the
lock and cut themselves. A waiter gives up waiting after half its own timeout and cuts anyway
(duplicate work, never a wrong result: the object key is the content hash).
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis

from clipper.errors import Canceled
from workers import keys

#: How often a waiting job looks for the other job's result.
POLL_INTERVAL_SECONDS = 0.5

# Release only our own lock: a lock that expired and was taken by another job stays.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def wait_or_claim(
    conn: Redis,
    content_hash: str,
    clip_id: str,
    *,
    ttl_seconds: int,
    max_wait_seconds: float,
) -> dict[str, Any] | None:
    """None: this job may cut. A dict: another job stored these bytes (its content record)."""
    key = keys.cutting(content_hash)
    deadline = time.monotonic() + max_wait_seconds
    while True:
        if conn.set(key, clip_id, nx=True, ex=max(ttl_seconds, 1)):
            return None
        holder = conn.get(key)
        if holder is not None and bytes(holder).decode() == clip_id:  # type: ignore[arg-type]
            return None  # our own lock, from an earlier attempt of this job
        known = conn.get(keys.content(content_hash))
        if known:
            result: dict[str, Any] = json.loads(known)  # type: ignore[arg-type]
            return result
        if conn.exists(keys.cancel(clip_id)):
            raise Canceled("canceled while waiting for the same cut")
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_INTERVAL_SECONDS)


def release(conn: Redis, content_hash: str, clip_id: str) -> None:
    """Drop the lock if this clip holds it."""
    conn.eval(_RELEASE, 1, keys.cutting(content_hash), clip_id)
