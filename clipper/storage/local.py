"""Local-disk backend: files under `local_storage_dir`, links served by the API's files route.

Layout: `sources/<key>`, `clips/<key>`, sidecar metadata in `.meta/<bucket>/<key>.json`, temp
files in `.tmp/` (same file system, so `os.replace` is atomic). A reader never sees a
half-written object: data goes to a temp file, is fsynced, then renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from clipper.errors import BadRequest, NotFound, TransientError, UnsafeInput
from clipper.settings import Settings
from clipper.storage.base import (
    BUCKETS,
    Bucket,
    ObjectInfo,
    normalize_metadata,
    validate_key,
    validate_prefix,
    validate_ttl,
)
from clipper.storage.links import build_local_link

#: Copy buffer for uploads and hashing.
CHUNK_BYTES = 1024 * 1024

#: Content type stored for sources and for files dropped in by hand.
DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class LocalFile:
    """An object as the files route serves it."""

    path: Path
    info: ObjectInfo
    content_type: str


class LocalStorage:
    """The Storage interface on a local folder."""

    def __init__(self, settings: Settings) -> None:
        self._root = Path(settings.local_storage_dir).expanduser().resolve()
        self._base_url = settings.public_base_url
        self._secret = settings.link_secret.get_secret_value()

    @property
    def root(self) -> Path:
        """The storage folder (absolute)."""
        return self._root

    def ensure_buckets(self) -> None:
        """Create the folders when missing."""
        for bucket in BUCKETS:
            (self._root / bucket).mkdir(parents=True, exist_ok=True)
            (self._root / ".meta" / bucket).mkdir(parents=True, exist_ok=True)
        (self._root / ".tmp").mkdir(parents=True, exist_ok=True)

    def check(self) -> None:
        """Readiness: every folder exists and is writable."""
        for folder in [self._root / b for b in BUCKETS] + [self._root / ".tmp"]:
            if not folder.is_dir() or not os.access(folder, os.W_OK):
                raise TransientError(
                    "storage unavailable", detail=f"folder {folder} is missing or read-only"
                )

    def list_sources(self, prefix: str = "", limit: int = 1000) -> list[ObjectInfo]:
        """Sources whose key starts with `prefix`, sorted by key, at most `limit`."""
        validate_prefix(prefix)
        base = self._root / "sources"
        keys = sorted(
            path.relative_to(base).as_posix()
            for path in base.rglob("*")
            if path.is_file() and not path.is_symlink()
        )
        return [self._info("sources", key) for key in keys if key.startswith(prefix)][:limit]

    def stat_source(self, key: str) -> ObjectInfo:
        """One source; NotFound when missing."""
        return self._info("sources", key)

    def put_source(self, key: str, path: Path) -> ObjectInfo:
        """Copy a local file into the source library."""
        return self._put("sources", key, path, {}, DEFAULT_CONTENT_TYPE)

    def source_input_url(self, key: str, ttl_seconds: int) -> str:
        """The source's absolute path (the engine adds `file:` before handing it to FFmpeg)."""
        self._info("sources", key)
        return str(self._path("sources", key))

    def put_clip(
        self, key: str, path: Path, *, metadata: dict[str, str], content_type: str
    ) -> ObjectInfo:
        """Store a verified clip with its provenance metadata."""
        return self._put("clips", key, path, metadata, content_type)

    def abort_clip_uploads(self, key: str) -> int:
        """Remove temp files a killed writer of this clip left in `.tmp/`."""
        validate_key(key)
        leftovers = list((self._root / ".tmp").glob(_temp_prefix("clips", key) + "*"))
        for path in leftovers:
            path.unlink(missing_ok=True)
        return len(leftovers)

    def stat_clip(self, key: str) -> ObjectInfo | None:
        """One clip, or None when missing."""
        try:
            return self._info("clips", key)
        except NotFound:
            return None

    def delete_clip(self, key: str) -> None:
        """Remove a clip and its sidecar; a missing clip is fine."""
        self._path("clips", key).unlink(missing_ok=True)
        self._meta_path("clips", key).unlink(missing_ok=True)

    def download_url(
        self, bucket: Bucket, key: str, *, filename: str, ttl_seconds: int
    ) -> tuple[str, datetime]:
        """A link to the API's files route, HMAC-signed with `link_secret`."""
        self._path(bucket, key)
        expires_unix = int(time.time()) + validate_ttl(ttl_seconds)
        url = build_local_link(
            self._base_url,
            self._secret,
            bucket,
            key,
            filename=filename,
            expires_unix=expires_unix,
        )
        return url, datetime.fromtimestamp(expires_unix, UTC)

    def local_file(self, bucket: Bucket, key: str) -> LocalFile:
        """Path, info and content type of an object, for serving it (NotFound when missing)."""
        info = self._info(bucket, key)
        sidecar = self._read_sidecar(bucket, key) or {}
        content_type = str(sidecar.get("content_type") or DEFAULT_CONTENT_TYPE)
        return LocalFile(self._path(bucket, key), info, content_type)

    # -- helpers -------------------------------------------------------------------------

    def _path(self, bucket: Bucket, key: str) -> Path:
        if bucket not in BUCKETS:
            raise BadRequest(f"unknown bucket {bucket!r}", field="bucket")
        validate_key(key)
        return _inside(self._root / bucket, key)

    def _meta_path(self, bucket: Bucket, key: str) -> Path:
        validate_key(key)
        return _inside(self._root / ".meta" / bucket, key + ".json")

    def _info(self, bucket: Bucket, key: str) -> ObjectInfo:
        path = self._path(bucket, key)
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"object {key!r} not found") from None
        if not path.is_file():
            raise NotFound(f"object {key!r} not found")
        sidecar = self._read_sidecar(bucket, key)
        fresh = (
            sidecar is not None
            and sidecar.get("size_bytes") == stat.st_size
            and sidecar.get("mtime_ns") == stat.st_mtime_ns
        )
        if sidecar is None or not fresh:
            # A file put here by hand (or replaced behind our back): hash it; remember the
            # hash only when there was no sidecar, so a concurrent put's sidecar always wins.
            with path.open("rb") as handle:
                etag = _md5(handle)
            new = {"etag": etag, "size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
            if sidecar is None:
                self._write_sidecar(bucket, key, {**new, "metadata": {}}, overwrite=False)
            sidecar = {**new, "metadata": {}}
        return ObjectInfo(
            key=key,
            size_bytes=stat.st_size,
            etag=str(sidecar["etag"]),
            last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
            metadata=dict(sidecar.get("metadata") or {}),
        )

    def _read_sidecar(self, bucket: Bucket, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._meta_path(bucket, key).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _put(
        self, bucket: Bucket, key: str, source: Path, metadata: dict[str, str], content_type: str
    ) -> ObjectInfo:
        target = self._path(bucket, key)
        clean = normalize_metadata(metadata)
        with source.open("rb") as src, self._errors(key):
            target.parent.mkdir(parents=True, exist_ok=True)
            with self._temp_file(bucket, key) as (tmp, handle):
                etag = _md5(src, copy_to=handle)
                handle.flush()
                os.fsync(handle.fileno())
                os.replace(tmp, target)
            stat = target.stat()
            sidecar = {
                "etag": etag,
                "size_bytes": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "content_type": content_type,
                "metadata": clean,
            }
            self._write_sidecar(bucket, key, sidecar, overwrite=True)
        return self._info(bucket, key)

    def _write_sidecar(
        self, bucket: Bucket, key: str, data: dict[str, Any], *, overwrite: bool
    ) -> None:
        meta = self._meta_path(bucket, key)
        meta.parent.mkdir(parents=True, exist_ok=True)
        with self._temp_file(bucket, key) as (tmp, handle):
            handle.write(json.dumps(data, sort_keys=True).encode())
            handle.flush()
            if overwrite:
                os.replace(tmp, meta)
            else:
                # link() refuses to replace an existing file: a put's sidecar is never undone.
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, meta)

    @contextlib.contextmanager
    def _temp_file(self, bucket: Bucket, key: str) -> Iterator[tuple[Path, BinaryIO]]:
        tmp_dir = self._root / ".tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix=_temp_prefix(bucket, key))
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield tmp, handle
        finally:
            tmp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        try:
            yield
        except (NotADirectoryError, IsADirectoryError, FileExistsError):
            raise BadRequest(
                "the object key collides with an existing key", field="key", detail=key
            ) from None
        except OSError as exc:
            raise TransientError(
                "storage unavailable", detail=f"local write of {key!r} failed: {exc.strerror}"
            ) from None


def _temp_prefix(bucket: Bucket, key: str) -> str:
    """Temp files of one object share a prefix, so a killed writer's leftovers can be found."""
    digest = hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()[:16]
    return f"put-{digest}-"


def _inside(base: Path, relative: str) -> Path:
    """`base / relative`, refusing anything that resolves outside `base` (symlinks included)."""
    base = base.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base) or path == base:
        raise UnsafeInput("object key points outside the storage folder", field="key")
    return path


def _md5(handle: BinaryIO, copy_to: BinaryIO | None = None) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    while chunk := handle.read(CHUNK_BYTES):
        digest.update(chunk)
        if copy_to is not None:
            copy_to.write(chunk)
    return digest.hexdigest()
