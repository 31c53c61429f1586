"""Every Redis key Clipper writes, in one place (prefix `clipper:`).

RQ keeps its own keys under `rq:`; ours never collide with them.

- `clipper:clip:{clip_id}` (hash): the clip record (see `workers.records`);
- `clipper:join:{owner}:{join_hash}`: id of the owner's clip for that exact request (dedup);
- `clipper:idem:{owner}:{sha256(Idempotency-Key)}`: JSON {body_sha256, status_code, clip_id};
- `clipper:probe:{sha256(source key)}:{etag}`: `MediaInfo.to_dict()` JSON per source version;
- `clipper:cancel:{clip_id}`: set when a running clip must stop (polled by its job);
- `clipper:cutting:{content_hash}`: id of the clip whose job is cutting those bytes now;
- `clipper:content:{content_hash}`: JSON {size_bytes, duration_seconds, accuracy} of a stored
  clip object (shared by every owner's clip of those bytes);
- `clipper:webhook-secret:{client}` (hash, no TTL): the client's webhook signing secrets,
  `current`, `current_since`, and during a rotation `previous`, `previous_until` (see
  `workers.delivery.secrets`).
"""

from __future__ import annotations

import hashlib

PREFIX = "clipper:"

#: How long a clip record lives after its last write.
RECORD_TTL_SECONDS = 30 * 24 * 3600
#: How long an Idempotency-Key is remembered (the usual 24 h of payment APIs).
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
#: How long a probe result is cached; the ETag in the key makes stale entries unreachable.
PROBE_TTL_SECONDS = 7 * 24 * 3600
#: How long a cancel flag lives: longer than any job that could still be polling it.
CANCEL_TTL_SECONDS = 24 * 3600


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def clip(clip_id: str) -> str:
    """The clip record hash."""
    return f"{PREFIX}clip:{clip_id}"


def join(owner: str, join_hash: str) -> str:
    """Maps an owner's exact request to the clip serving it."""
    return f"{PREFIX}join:{owner}:{join_hash}"


def idempotency(owner: str, idempotency_key: str) -> str:
    """An owner's remembered Idempotency-Key (hashed: the header is user text)."""
    return f"{PREFIX}idem:{owner}:{_sha256(idempotency_key)}"


def probe(source_key: str, etag: str) -> str:
    """A cached probe of one version of a source."""
    return f"{PREFIX}probe:{_sha256(source_key)}:{_sha256(etag)[:32]}"


def cancel(clip_id: str) -> str:
    """The cancel flag a running job polls."""
    return f"{PREFIX}cancel:{clip_id}"


def content(content_hash: str) -> str:
    """What is known about a stored clip object (shared by every owner's clip of it)."""
    return f"{PREFIX}content:{content_hash}"


def cutting(content_hash: str) -> str:
    """Held by the one job cutting these bytes (see `workers.worker.content_lock`)."""
    return f"{PREFIX}cutting:{content_hash}"


def webhook_secret(client: str) -> str:
    """A client's webhook signing secrets (current, and previous during a rotation)."""
    return f"{PREFIX}webhook-secret:{client}"
