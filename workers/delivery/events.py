"""The events Clipper sends to a clip's `callback_url`: types, ids and the JSON body.

Body (compact JSON): `{"event_id": "evt_…", "type": "clip.succeeded" | "clip.failed",
"clip": {…the clip resource, as GET /v1/clips/{id} shows it…}}`. One event is made when a
clip with a callback succeeds or fails; its id is chosen when it is queued and travels in
the job, so every retry of it carries the same id (the `webhook-id` header).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Final, Literal, get_args

#: What happened to the clip.
EventType = Literal["clip.succeeded", "clip.failed"]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)

#: Event ids are this prefix and 32 hex digits (a random UUID).
EVENT_ID_PREFIX: Final = "evt_"


def new_event_id() -> str:
    """A fresh event id: `evt_` + 32 hex digits."""
    return f"{EVENT_ID_PREFIX}{uuid.uuid4().hex}"


def event_body(event_id: str, event_type: str, clip: dict[str, Any]) -> bytes:
    """The bytes POSTed (and signed): the same shape since the first release."""
    event = {"event_id": event_id, "type": event_type, "clip": clip}
    return json.dumps(event, separators=(",", ":")).encode()
