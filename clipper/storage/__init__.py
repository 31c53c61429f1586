"""Object storage: the `Storage` interface, an S3 backend and a local-disk backend."""

from __future__ import annotations

from clipper.settings import Settings
from clipper.storage.base import (
    BUCKETS,
    Bucket,
    ObjectInfo,
    Storage,
    validate_key,
    validate_prefix,
)
from clipper.storage.links import ascii_filename, content_disposition, safe_filename

__all__ = [
    "BUCKETS",
    "Bucket",
    "ObjectInfo",
    "Storage",
    "ascii_filename",
    "content_disposition",
    "open_storage",
    "safe_filename",
    "validate_key",
    "validate_prefix",
]


def open_storage(settings: Settings) -> Storage:
    """The backend `settings.storage` names (no network call; see `ensure_buckets`/`check`)."""
    if settings.storage == "s3":
        from clipper.storage.s3 import S3Storage

        return S3Storage(settings)
    from clipper.storage.local import LocalStorage

    return LocalStorage(settings)
