"""The submit path (shared by the API and the worker): a request becomes a deduplicated clip.

- `flow` the submit itself: validation against the source, the two dedup levels, idempotency;
- `claim` the Redis step: claim the owner's request in one Lua script, queue the job;
- `clipspec` the request ↔ the engine's `CutSpec`, content and join hashes, file names;
- `source_stats` the API process's short memory of source HEADs.
"""

from __future__ import annotations

from workers.submit.claim import NeedsThread, Submission
from workers.submit.flow import IdempotencyConflict, Warm, submit_clip, submit_warm

__all__ = ["IdempotencyConflict", "NeedsThread", "Submission", "Warm", "submit_clip", "submit_warm"]
