"""Making a clip record the owner's clip in Redis, and queueing its job.

`claim(...)` runs one Lua script that looks for stored bytes of the content, then writes the
record and the owner's join key (or returns the clip already joined); `_publish` puts the RQ
job and the `clips_total` counter in one MULTI pipeline: two round trips for a new clip.
Split from `workers.submit.flow`, which validates and builds the record first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis import Redis

from clipper.errors import BadRequest
from clipper.logs import log_state_change
from clipper.storage import ObjectInfo, Storage
from workers import keys, metrics, records
from workers.queues import enqueue_clip
from workers.records import ClipRecord
from workers.submit.source_stats import SourceStats
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


class NeedsThread(Exception):
    """A warm submit met something that may block (storage, DNS, an existing clip to look
    at): nothing was written; do the whole submit again with `submit_clip` in a thread."""


class StaleSource(Exception):
    """The remembered HEAD of the source is out of date: start over with a fresh one."""


@dataclass
class SourceSeen:
    """The source's HEAD as this submit saw it, and whether it came straight from storage."""

    key: str
    info: ObjectInfo
    fresh: bool
    stats: SourceStats | None

    def confirm(self) -> None:
        """Before existing bytes are handed out: a fresh HEAD must show the same ETag."""
        if self.fresh or self.stats is None:
            return
        current = self.stats.fresh(self.key)
        self.fresh = True
        if current.etag != self.info.etag:
            raise StaleSource


@dataclass(frozen=True)
class Submission:
    """The outcome: HTTP status (200 done / 202 queued) and the clip record."""

    status_code: int
    record: ClipRecord


def claim(
    conn: Redis,
    storage: Storage,
    record: ClipRecord,
    jhash: str,
    source: SourceSeen,
    *,
    check_content: bool = False,
    inline: bool = False,
) -> Submission:
    """Make `record` the owner's clip for this request, or return the one already there.

    With `check_content`, bytes already stored for the record's content hash make it a
    `succeeded` clip at once (after a look in storage that the object is really there).
    """
    join_key = keys.join(record.owner, jhash)
    script_keys = [join_key, keys.clip(record.id), keys.content(record.content_hash)]
    save_and_claim = conn.register_script(_SAVE_AND_CLAIM)
    stale = ""
    stored_object = ""  # an object this request has just seen in storage: no second look
    for _ in range(6):
        args: list[str | int] = [
            record.id,
            stale,
            keys.RECORD_TTL_SECONDS,
            "1" if check_content else "0",
            *_flat(record),
        ]
        outcome, value = (bytes(part).decode() for part in save_and_claim(script_keys, args))
        if inline and outcome != "saved":
            raise NeedsThread  # the script wrote nothing; what follows may ask storage
        if outcome == "content":
            check_content = False
            if storage.stat_clip(record.object_key) is not None:
                source.confirm()
                # The bytes exist already (cut for this or another client): done at once.
                record.status = "succeeded"
                record.result = json.loads(value)
                record.finished_at = records.now_iso()
                stored_object = record.object_key
            continue
        if outcome == "saved":
            return _publish(conn, record)
        existing = records.load(conn, value)
        if existing is not None and _still_good(storage, existing, stored_object):
            if existing.status == "succeeded":
                source.confirm()  # its bytes are of the ETag this submit saw
                return Submission(200, existing)
            return Submission(202, existing)
        stale = value  # failed, canceled or expired: replace it on the next try
    raise BadRequest("too many concurrent identical requests; retry", field="source")


def _flat(record: ClipRecord) -> list[str]:
    return [item for pair in record.to_mapping().items() for item in pair]


def _still_good(storage: Storage, record: ClipRecord, stored_object: str = "") -> bool:
    if record.status in records.ACTIVE:
        return True
    if record.status != "succeeded":
        return False  # failed or canceled: a new request deserves a new try
    if record.kind == "source" or record.object_key == stored_object:
        return True
    return storage.stat_clip(record.object_key) is not None


def _publish(conn: Redis, record: ClipRecord) -> Submission:
    """Enqueue the job for a new queued clip (or fire the webhook of an instant success)."""
    if record.status == "succeeded":
        if record.callback_url:
            enqueue_delivery(conn, record.id, "clip.succeeded")
        return Submission(200, record)
    try:
        # The job and the queued counter in one round trip.
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
    return Submission(202, record)
