"""What a submit did, as a type: the API branches on these instead of catching exceptions.

Every outcome but `NeedsThread` carries the clip record the client gets and the HTTP status
the API answers with (200: the clip's bytes exist already; 202: it is being cut).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from workers.records import ClipRecord


@dataclass(frozen=True)
class Queued:
    """A new clip: its record is saved and its job queued."""

    record: ClipRecord

    @property
    def status_code(self) -> int:
        """202: the clip is being cut."""
        return 202


@dataclass(frozen=True)
class Joined:
    """The same owner's identical request: its clip (queued, running or succeeded)."""

    record: ClipRecord

    @property
    def status_code(self) -> int:
        """200 once the joined clip succeeded, 202 while it is queued or running."""
        return 200 if self.record.status == "succeeded" else 202


@dataclass(frozen=True)
class Existing:
    """A new clip of bytes already stored (cut for this or another owner): succeeded at once."""

    record: ClipRecord

    @property
    def status_code(self) -> int:
        """200: nothing to cut."""
        return 200


@dataclass(frozen=True)
class FullVideo:
    """A new clip of the whole source in its own format: a link to the source itself."""

    record: ClipRecord

    @property
    def status_code(self) -> int:
        """200: nothing to cut."""
        return 200


@dataclass(frozen=True)
class Replayed:
    """An Idempotency-Key seen before with the same body: its clip and its first status code."""

    record: ClipRecord
    status_code: int


class Blocker(StrEnum):
    """What a warm submit met that may block the event loop."""

    PAUSED = "paused"  # the API's breaker sends every submit to the thread pool for a while
    IDEMPOTENCY_KEY = "idempotency_key"  # its bookkeeping: two more round trips, kept off the loop
    CALLBACK_URL = "callback_url"  # checking it resolves the host name
    FULL_VIDEO = "full_video"  # answered at once (200), so its HEAD must be fresh
    COLD_SOURCE = "cold_source"  # no HEAD or probe of the source in this process's memory
    EXISTING_CLIP = "existing_clip"  # an identical or stored clip to look at in storage


@dataclass(frozen=True)
class NeedsThread:
    """A warm submit stopped having written nothing: submit again in a thread."""

    blocker: Blocker


#: A submit that got as far as a clip.
Submitted = Queued | Joined | Existing | FullVideo | Replayed
#: Everything a submit can return.
SubmitResult = Submitted | NeedsThread
