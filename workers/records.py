"""Clip records: one Redis hash per clip, written by the API and the worker.

A hash (not one JSON string) lets the worker write progress while the API writes a cancel
without either clobbering the other; status changes go through a Lua compare-and-set so a
canceled clip can never flip back to running or succeeded.

Fields: id, owner (API key name), status (queued|running|succeeded|failed|canceled), kind
(`clip`: cut by a job; `source`: full video, links to the source object itself), request
(the accepted `ClipRequest` as `model_dump(mode="json")`; the job validates it again),
source_key, source_etag, content_hash, bucket + object_key (where the bytes are), filename,
callback_url, queue, clip_seconds, timeout_seconds, progress {phase, percent, eta_seconds},
result {size_bytes, duration_seconds, accuracy}, error {code, message, field},
created_at/started_at/finished_at/updated_at (ISO 8601 UTC).
No signed link is ever stored: each GET makes a fresh one.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal

from redis import Redis

from workers import keys

Status = Literal["queued", "running", "succeeded", "failed", "canceled"]
ACTIVE: tuple[Status, ...] = ("queued", "running")
FINAL: tuple[Status, ...] = ("succeeded", "failed", "canceled")

_JSON_FIELDS = {"request", "progress", "result", "error"}


def now_iso() -> str:
    """The current UTC time as ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_clip_id() -> str:
    """A fresh, never reused clip id (also the RQ job id)."""
    return f"clp_{uuid.uuid4().hex}"


@dataclass
class ClipRecord:
    """The stored state of one clip."""

    id: str
    owner: str
    status: Status
    kind: Literal["clip", "source"]
    request: dict[str, Any]
    source_key: str
    source_etag: str
    bucket: Literal["sources", "clips"]
    object_key: str
    filename: str
    content_hash: str = ""
    callback_url: str = ""
    queue: str = ""
    clip_seconds: float = 0.0
    timeout_seconds: int = 0
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    started_at: str = ""
    finished_at: str = ""

    def to_mapping(self) -> dict[str, str]:
        """Hash fields as strings (a shallow read: `asdict` deep-copies the nested dicts
        only for them to be JSON-encoded right away, a tenth of a submit's CPU)."""
        return encode_fields({name: getattr(self, name) for name in _FIELD_NAMES})

    @classmethod
    def from_mapping(cls, raw: dict[bytes, bytes]) -> ClipRecord:
        """Decode a Redis hash (unknown fields are ignored so old workers can read new records)."""
        data = {k.decode(): v.decode() for k, v in raw.items()}
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value: Any = data[f.name]
            if f.name in _JSON_FIELDS:
                value = json.loads(value)
            elif f.name == "clip_seconds":
                value = float(value)
            elif f.name == "timeout_seconds":
                value = int(value)
            kwargs[f.name] = value
        return cls(**kwargs)


_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(ClipRecord))


def encode_fields(values: dict[str, Any]) -> dict[str, str]:
    """Encode record fields for HSET (JSON for the nested ones)."""
    out: dict[str, str] = {}
    for name, value in values.items():
        if name in _JSON_FIELDS:
            out[name] = json.dumps(value, separators=(",", ":"))
        else:
            out[name] = str(value)
    return out


def save(conn: Redis, record: ClipRecord) -> None:
    """Write a whole new record."""
    key = keys.clip(record.id)
    with conn.pipeline() as pipe:
        pipe.hset(key, mapping=record.to_mapping())
        pipe.expire(key, keys.RECORD_TTL_SECONDS)
        pipe.execute()


def load(conn: Redis, clip_id: str) -> ClipRecord | None:
    """The record, or None when there is none."""
    raw = conn.hgetall(keys.clip(clip_id))
    if not raw:
        return None
    return ClipRecord.from_mapping(raw)  # type: ignore[arg-type]


# Sets fields only when the current status is one of ARGV[1] (a JSON list). Atomic, so a
# worker's late progress write cannot overwrite a cancel and vice versa.
_UPDATE_IF_STATUS = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
local allowed = cjson.decode(ARGV[1])
local ok = false
for _, s in ipairs(allowed) do if s == status then ok = true end end
if not ok then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""


def update_if_status(conn: Redis, clip_id: str, allowed: tuple[Status, ...], **values: Any) -> bool:
    """Set fields (e.g. status=...) only if the status is in `allowed`; True when done."""
    values.setdefault("updated_at", now_iso())
    argv: list[str] = [json.dumps(list(allowed)), str(keys.RECORD_TTL_SECONDS)]
    for name, value in encode_fields(values).items():
        argv += [name, value]
    done = conn.eval(_UPDATE_IF_STATUS, 1, keys.clip(clip_id), *argv)
    return bool(done)
