"""Each client's webhook signing secret, in Redis: made on first use, rotated by an admin.

A secret is a Standard Webhooks secret, `whsec_` + base64 of 32 random bytes, independent
of every other setting (rotating CLIPPER_LINK_SECRET does not touch it). The hash
`clipper:webhook-secret:{client}` (no TTL: it lives as long as the client) holds
`current`, `current_since` and, after a rotation with an overlap, `previous` and
`previous_until` (Unix seconds). Until then deliveries are signed with both secrets, so a
receiver verifies with either and can switch at its own pace; a second rotation inside the
overlap keeps only the secret it replaced as `previous`.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from workers import keys

#: Standard Webhooks secrets start with this.
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
#: Random bytes in a secret (the spec asks for 24 to 64).
SECRET_BYTES = 32

# Make the client's secret unless one exists (two processes racing agree on the first one).
_LOAD = """
if redis.call('HSETNX', KEYS[1], 'current', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'current_since', ARGV[2])
end
return redis.call('HGETALL', KEYS[1])
"""

# The current secret becomes the previous one until ARGV[3] (Unix seconds; '' = no overlap).
_ROTATE = """
local current = redis.call('HGET', KEYS[1], 'current')
if current and ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'previous', current, 'previous_until', ARGV[3])
else
  redis.call('HDEL', KEYS[1], 'previous', 'previous_until')
end
redis.call('HSET', KEYS[1], 'current', ARGV[1], 'current_since', ARGV[2])
return redis.call('HGETALL', KEYS[1])
"""


@dataclass(frozen=True)
class ClientSecrets:
    """A client's current secret and, while a rotation overlaps, the previous one."""

    current: str
    current_since: str
    previous: str | None = None
    previous_until_unix: int | None = None

    def previous_valid(self, now_unix: float) -> bool:
        """Whether the previous secret still signs at `now_unix`."""
        return self.previous is not None and now_unix < (self.previous_until_unix or 0)

    def signing(self, now_unix: float) -> list[str]:
        """The secrets a delivery at `now_unix` is signed with: current first."""
        previous = [self.previous] if self.previous and self.previous_valid(now_unix) else []
        return [self.current, *previous]

    def previous_valid_until(self, now_unix: float) -> str | None:
        """When the previous secret stops signing (ISO 8601), or None when it does not."""
        if not self.previous_valid(now_unix) or self.previous_until_unix is None:
            return None
        return datetime.fromtimestamp(self.previous_until_unix, UTC).isoformat()


def new_secret() -> str:
    """A fresh Standard Webhooks secret."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def _iso(now_unix: float) -> str:
    return datetime.fromtimestamp(now_unix, UTC).isoformat(timespec="seconds")


def _parse(reply: Any) -> ClientSecrets:
    flat = [bytes(item).decode() for item in reply]
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    until = fields.get("previous_until")
    return ClientSecrets(
        current=fields["current"],
        current_since=fields.get("current_since", ""),
        previous=fields.get("previous"),
        previous_until_unix=int(until) if until else None,
    )


def load(conn: Redis, client: str, *, now_unix: float | None = None) -> ClientSecrets:
    """The client's secrets; the first call for a client makes its secret (one round trip)."""
    now = time.time() if now_unix is None else now_unix
    script = conn.register_script(_LOAD)
    return _parse(script([keys.webhook_secret(client)], [new_secret(), _iso(now)]))


def rotate(
    conn: Redis, client: str, *, overlap_seconds: int, now_unix: float | None = None
) -> ClientSecrets:
    """Give the client a new secret; the one it replaces keeps signing `overlap_seconds`."""
    now = time.time() if now_unix is None else now_unix
    until = str(int(now) + overlap_seconds) if overlap_seconds > 0 else ""
    script = conn.register_script(_ROTATE)
    return _parse(script([keys.webhook_secret(client)], [new_secret(), _iso(now), until]))
