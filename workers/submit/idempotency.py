"""`Idempotency-Key`: the same key and body again get the first answer's status and clip.

The entry (`clipper:idem:{owner}:{sha256(key)}`, kept `IDEMPOTENCY_TTL_SECONDS`) is the JSON
`{"body_sha256", "status_code", "clip_id"}`, the body being the request's
`model_dump(mode="json")` with sorted keys; the same key with another body is a 422.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis import Redis

from clipper.errors import BadRequest
from workers import keys, records
from workers.submit.clipspec import body_hash
from workers.submit.request import ClipOrder
from workers.submit.results import Replayed, Submitted


class IdempotencyConflict(BadRequest):
    """The Idempotency-Key was used before with a different body."""

    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Idempotency:
    """Where an order's Idempotency-Key is remembered, and the digest of its body."""

    redis_key: str
    body_sha256: str

    @classmethod
    def of(cls, order: ClipOrder, idempotency_key: str) -> Idempotency:
        """The entry of `order` under its key."""
        return cls(
            keys.idempotency(order.owner, idempotency_key),
            body_hash(order.request.model_dump(mode="json")),
        )


def replay(conn: Redis, entry: Idempotency) -> Replayed | None:
    """The first answer for this key, or None when there is none (or its clip expired)."""
    raw = conn.get(entry.redis_key)
    if not raw:
        return None
    stored = json.loads(raw)  # type: ignore[arg-type]
    if stored["body_sha256"] != entry.body_sha256:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used with a different request body",
            field="Idempotency-Key",
        )
    record = records.load(conn, stored["clip_id"])
    return Replayed(record, int(stored["status_code"])) if record else None


def remember(conn: Redis, entry: Idempotency, result: Submitted) -> Submitted:
    """Keep `result` as this key's answer; if a concurrent submit with the key was first,
    its answer instead."""
    value = {
        "body_sha256": entry.body_sha256,
        "status_code": result.status_code,
        "clip_id": result.record.id,
    }
    if conn.set(entry.redis_key, json.dumps(value), nx=True, ex=keys.IDEMPOTENCY_TTL_SECONDS):
        return result
    return replay(conn, entry) or result
