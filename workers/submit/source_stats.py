"""A short-lived, per-process memory of source HEADs (size, ETag) for the submit path.

Why: a storage HEAD per submit was a fifth of the API's CPU per request and as much again in
the storage server; a burst of 50 submits for one source asked the same question 50 times.
Here one HEAD answers every submit for that source for `ttl_seconds`, and concurrent misses
for one key wait for a single HEAD (single flight) instead of sending one each.

What a stale answer can and cannot do (`ttl_seconds` bounds how stale):
- A new clip (202) is queued with the ETag seen here; the worker compares it with a fresh
  HEAD before the cut and again before the upload, and fails the clip with
  `source_changed` if the source was replaced: it never stores a clip of another version.
- An answer that hands out existing bytes at once (200: dedup hit, full video) is confirmed
  with a fresh HEAD by the caller (`workers.submit.flow`), so it never serves an old version.
- Missing sources are never remembered: a freshly uploaded source is usable at once.
- For up to `ttl_seconds` after storage goes down, submits for sources seen just before are
  still queued (the worker retries storage trouble) instead of answering 503.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from clipper.storage import ObjectInfo, Storage

#: Sources remembered per process (least recently used go first).
MAX_ENTRIES = 1024
#: Fraction of the TTL left when `peek` starts a background refresh of an entry in use.
REFRESH_AT = 0.5
#: Longest a follower waits for the leader's HEAD before asking storage itself.
FOLLOWER_WAIT_SECONDS = 10.0


@dataclass
class _Flight:
    """One HEAD in progress; followers wait on `done`."""

    done: threading.Event = field(default_factory=threading.Event)
    info: ObjectInfo | None = None


class SourceStats:
    """`get(key)`: the source's ObjectInfo, from memory when younger than `ttl_seconds`."""

    def __init__(
        self,
        storage: Storage,
        ttl_seconds: float,
        *,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.storage = storage
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, ObjectInfo]] = OrderedDict()
        self._flights: dict[str, _Flight] = {}
        #: HEADs sent to storage (tests and the benchmark read it).
        self.heads = 0

    def get(self, key: str) -> tuple[ObjectInfo, bool]:
        """(info, fresh): `fresh` is False when the answer came from memory."""
        if self.ttl_seconds <= 0:
            return self.fresh(key), True
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and self._clock() < entry[0]:
                return entry[1], False
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if leader:
            try:
                return self.fresh(key), True
            finally:
                with self._lock:
                    self._flights.pop(key, None)
                flight.done.set()
        flight.done.wait(FOLLOWER_WAIT_SECONDS)
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and flight.done.is_set():
            return entry[1], False
        # The leader failed (missing source, storage down) or is stuck: ask for ourselves,
        # so each request gets its own NotFound or TransientError.
        return self.fresh(key), True

    def peek(self, key: str) -> ObjectInfo | None:
        """The remembered HEAD if still within the TTL; never asks storage on this thread.

        Past half its TTL an entry in use is refreshed by a background HEAD, so a source
        under steady traffic never expires (each answer stays at most `ttl_seconds` old)
        and a burst does not find it expired all at once.
        """
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self.ttl_seconds <= 0 or now >= entry[0]:
                return None
            refresh = now >= entry[0] - self.ttl_seconds * REFRESH_AT and key not in self._flights
            if refresh:
                flight = self._flights[key] = _Flight()
        if refresh:
            threading.Thread(target=self._refresh, args=(key, flight), daemon=True).start()
        return entry[1]

    def _refresh(self, key: str, flight: _Flight) -> None:
        try:
            self.fresh(key)
        except Exception:  # noqa: S110 (fresh() forgot the key: the next submit asks itself)
            pass
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def fresh(self, key: str) -> ObjectInfo:
        """HEAD the source now and remember the answer; NotFound forgets the key."""
        with self._lock:
            self.heads += 1
        try:
            info = self.storage.stat_source(key)
        except Exception:
            self.forget(key)
            raise
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl_seconds, info)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return info

    def forget(self, key: str) -> None:
        """Drop what is remembered about `key` (e.g. it was seen to change)."""
        with self._lock:
            self._entries.pop(key, None)
