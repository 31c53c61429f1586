"""The submit path (shared by the API and the worker): a request becomes a deduplicated clip.

`submit(ctx, order, mode=...)` returns what happened (`results`): Queued, Joined, Existing,
FullVideo, Replayed, or NeedsThread (warm mode only, having written nothing).

- `request` the `ClipRequest` model (HTTP body, clip record, job) and the `ClipOrder`;
- `flow` the submit itself: validation against the source, the two dedup levels;
- `drafts` the clip record a submit proposes; `clipspec` hashes, lengths, file names;
- `claim` the Redis step: claim the owner's request in one Lua script, queue the job;
- `idempotency` the Idempotency-Key entries; `results` the outcomes;
- `source_stats` the API process's short memory of source HEADs.
"""

from __future__ import annotations

from workers.submit.flow import SubmitContext, SubmitMode, submit, warm_source
from workers.submit.idempotency import IdempotencyConflict
from workers.submit.request import ClipOrder, ClipRequest
from workers.submit.results import (
    Blocker,
    Existing,
    FullVideo,
    Joined,
    NeedsThread,
    Queued,
    Replayed,
    SubmitResult,
    Submitted,
)

__all__ = [
    "Blocker",
    "ClipOrder",
    "ClipRequest",
    "Existing",
    "FullVideo",
    "IdempotencyConflict",
    "Joined",
    "NeedsThread",
    "Queued",
    "Replayed",
    "SubmitContext",
    "SubmitMode",
    "SubmitResult",
    "Submitted",
    "submit",
    "warm_source",
]
