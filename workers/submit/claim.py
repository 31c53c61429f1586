"""The submit path's Redis step: make a clip record the owner's clip, and queue its job.

`claim(...)` runs one Lua script that looks for stored bytes of the content, then writes the
record and the owner's join key (or names the clip already joined); `publish(...)` puts the
RQ job and the `clips_total` counter in one MULTI pipeline: two round trips for a new clip.
Only Redis here: what the answers mean, and the looks in storage they call for, are
`workers.submit.flow`'s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from redis import Redis

from clipper.logs import log_state_change
from workers import keys, metrics, records
from workers.queues import enqueue_clip
from workers.records import ClipRecord
from workers.webhooks import enqueue_delivery

# Save the new clip record and point the owner's join key at it, in one round trip, unless
# the join key names another clip: then that clip's id is returned and nothing is written.
# ARGV[2] is a stale clip (failed, canceled or gone) the caller found there and may replace,
# '' when there was none. Writing the record first keeps "a joiner always finds a record".
# With ARGV[4] = '1' the script first looks for stored bytes of this content (KEYS[3]) and,
# when there are some, returns them without writing: the caller checks the object is really
# in storage and calls again (ARGV[4] = '0') with the record it then wants. A new clip thus
# costs one round trip here instead of a GET and the script.
_SAVE_AND_CLAIM = """
if ARGV[4] == '1' then
  local known = redis.call('GET', KEYS[3])
  if known then return {'content', known} end
end
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[2] then return {'joined', current} end
redis.call('HSET', KEYS[2], unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[3]))
return {'saved', ''}
"""


@dataclass(frozen=True)
class Draft:
    """A clip record not saved yet, and the hash naming the owner's request (its join key)."""

    record: ClipRecord
    join_hash: str


@dataclass(frozen=True)
class Saved:
    """The record is saved and the owner's join key points at it."""


@dataclass(frozen=True)
class Taken:
    """The owner's join key names another clip; nothing was written."""

    clip_id: str


@dataclass(frozen=True)
class ContentKnown:
    """Bytes of this content were stored (their content record); nothing was written."""

    result: dict[str, Any]


#: What `claim` found.
Claim = Saved | Taken | ContentKnown


def claim(conn: Redis, draft: Draft, *, look_for_content: bool, replace: str = "") -> Claim:
    """One round trip: save `draft` as the owner's clip for its request, unless the join key
    names another clip (`replace`: one the caller found failed, canceled or gone, which may
    be replaced) or, with `look_for_content`, bytes of the content are known to be stored."""
    record = draft.record
    script_keys = [
        keys.join(record.owner, draft.join_hash),
        keys.clip(record.id),
        keys.content(record.content_hash),
    ]
    args: list[str | int] = [
        record.id,
        replace,
        keys.RECORD_TTL_SECONDS,
        "1" if look_for_content else "0",
        *_flat(record),
    ]
    reply = conn.register_script(_SAVE_AND_CLAIM)(script_keys, args)
    outcome, value = (bytes(part).decode() for part in reply)
    if outcome == "saved":
        return Saved()
    if outcome == "content":
        return ContentKnown(json.loads(value))
    return Taken(value)


def _flat(record: ClipRecord) -> list[str]:
    return [item for pair in record.to_mapping().items() for item in pair]


def publish(conn: Redis, record: ClipRecord) -> None:
    """After `claim` saved it: queue the job of a queued clip (the job and the queued counter
    in one round trip), or the webhook of one that succeeded at once."""
    if record.status == "succeeded":
        if record.callback_url:
            enqueue_delivery(conn, record.id, "clip.succeeded")
        return
    try:
        with conn.pipeline() as pipe:
            enqueue_clip(
                conn,
                record.id,
                queue_name=record.queue,
                timeout_seconds=record.timeout_seconds,
                pipeline=pipe,
            )
            metrics.inc(pipe, "clips_total", status="queued")
            pipe.execute()
    except Exception:
        # Best effort: a clip that never reached the queue must not be joined forever.
        records.update_if_status(
            conn,
            record.id,
            ("queued",),
            status="failed",
            error={"code": "transient", "message": "could not queue the job; retry"},
        )
        raise
    log_state_change(record.id, "queued", job_id=record.id, queue=record.queue)
