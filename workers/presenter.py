"""A clip record as clients see it (API responses and webhook bodies), with a fresh link.

The signed link is made here, on every read, and never stored.
"""

from __future__ import annotations

from typing import Any

from clipper.settings import Settings
from clipper.storage import Storage
from workers.records import ClipRecord


def clip_resource(
    record: ClipRecord, storage: Storage, settings: Settings, *, with_link: bool = True
) -> dict[str, Any]:
    """The public JSON of a clip; `result.download_url` is a fresh signed link."""
    result: dict[str, Any] | None = None
    if record.status == "succeeded":
        result = {
            "download_url": None,
            "expires_at": None,
            "filename": record.filename,
            "size_bytes": record.result.get("size_bytes"),
            "duration_seconds": record.result.get("duration_seconds"),
            "accuracy": record.result.get("accuracy"),
        }
        if with_link:
            url, expires_at = storage.download_url(
                record.bucket,
                record.object_key,
                filename=record.filename,
                ttl_seconds=settings.link_ttl_seconds,
            )
            result["download_url"] = url
            result["expires_at"] = expires_at.isoformat()
    progress = {"phase": None, "percent": 0.0, "eta_seconds": None} | record.progress
    if record.status == "succeeded":
        progress = {"phase": "done", "percent": 100.0, "eta_seconds": 0}
    return {
        "id": record.id,
        "status": record.status,
        "source": record.source_key,
        "request": record.request,
        "progress": progress,
        "result": result,
        "error": record.error or None,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "started_at": record.started_at or None,
        "finished_at": record.finished_at or None,
    }
