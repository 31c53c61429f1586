"""The storage interface both backends keep to, and the key and metadata rules they share."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import quote, unquote

from clipper.errors import BadRequest, UnsafeInput
from clipper.settings import MAX_LINK_TTL_SECONDS

#: The two logical buckets; each backend maps them to its own names (S3 bucket, folder).
Bucket = Literal["sources", "clips"]
BUCKETS: tuple[Bucket, ...] = ("sources", "clips")

#: S3's own limit on an object key, in UTF-8 bytes.
MAX_KEY_BYTES = 1024

#: Provenance metadata is sent as `x-amz-meta-*` headers; S3 caps all of them at 2 KB.
MAX_METADATA_BYTES = 2048

#: Printable ASCII kept as-is in metadata values; everything else (and `%`) is %-encoded.
_METADATA_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


@dataclass(frozen=True)
class ObjectInfo:
    """What a backend knows about one stored object."""

    key: str
    size_bytes: int
    etag: str
    last_modified: datetime
    metadata: dict[str, str] = field(default_factory=dict)


class Storage(Protocol):
    """A source library and a clips bucket, behind signed links (see docs/ARCHITECTURE.md)."""

    def ensure_buckets(self) -> None:
        """Create both buckets (or folders) when missing."""

    def check(self) -> None:
        """Readiness: raise TransientError when the store cannot be used right now."""

    def list_sources(self, prefix: str = "", limit: int = 1000) -> list[ObjectInfo]:
        """Sources whose key starts with `prefix`, sorted by key, at most `limit`."""
        ...

    def stat_source(self, key: str) -> ObjectInfo:
        """One source; NotFound when missing."""
        ...

    def put_source(self, key: str, path: Path) -> ObjectInfo:
        """Upload a local file into the source library."""
        ...

    def source_input_url(self, key: str, ttl_seconds: int) -> str:
        """What FFmpeg reads: a signed internal URL (S3) or an absolute local path."""
        ...

    def put_clip(
        self, key: str, path: Path, *, metadata: dict[str, str], content_type: str
    ) -> ObjectInfo:
        """Store a verified clip with its provenance metadata."""
        ...

    def stat_clip(self, key: str) -> ObjectInfo | None:
        """One clip, or None when it does not exist (the dedup check)."""
        ...

    def abort_clip_uploads(self, key: str) -> int:
        """Abort what a killed writer of this clip left unfinished (S3 multipart uploads,
        local temp files); returns how many. The finished object, if any, stays."""
        ...

    def delete_clip(self, key: str) -> None:
        """Remove a clip; deleting a missing clip is not an error."""

    def download_url(
        self, bucket: Bucket, key: str, *, filename: str, ttl_seconds: int
    ) -> tuple[str, datetime]:
        """A signed GET link that downloads as `filename`, and when it expires (UTC)."""
        ...


def validate_key(key: str) -> str:
    """Return `key` unchanged, or raise UnsafeInput when it could escape or confuse a store."""
    if not isinstance(key, str) or not key:
        raise UnsafeInput("object key is empty", field="key")
    if len(key.encode("utf-8", errors="surrogatepass")) > MAX_KEY_BYTES:
        raise UnsafeInput(f"object key is longer than {MAX_KEY_BYTES} bytes", field="key")
    if key[0] in "/-":
        # '/' would be absolute on disk; '-' could be read as an option by a command line.
        raise UnsafeInput("object key must not start with '/' or '-'", field="key")
    if "\\" in key:
        raise UnsafeInput("object key must not contain a backslash", field="key")
    if any(_is_control(ch) for ch in key):
        raise UnsafeInput("object key must not contain control characters", field="key")
    segments = key.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise UnsafeInput("object key must not contain empty, '.' or '..' segments", field="key")
    return key


def validate_prefix(prefix: str) -> str:
    """Return a listing prefix unchanged, or raise UnsafeInput (an empty prefix lists all)."""
    if not prefix:
        return prefix
    # A prefix may end in '/' (a folder) but otherwise follows the key rules.
    validate_key(prefix + "x" if prefix.endswith("/") else prefix)
    return prefix


def validate_ttl(ttl_seconds: int) -> int:
    """Return a link lifetime in seconds, or raise BadRequest outside 1 s .. 7 days."""
    if not 1 <= ttl_seconds <= MAX_LINK_TTL_SECONDS:
        raise BadRequest(
            f"link lifetime must be between 1 and {MAX_LINK_TTL_SECONDS} seconds",
            field="ttl_seconds",
        )
    return ttl_seconds


def normalize_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """Metadata names as both backends store them: lower case, `[a-z0-9-]`, `_` becomes `-`."""
    result: dict[str, str] = {}
    for name, value in metadata.items():
        clean = name.strip().lower().replace("_", "-")
        if clean.startswith("x-amz-meta-"):
            clean = clean[len("x-amz-meta-") :]
        if not clean or any(not (ch.isascii() and (ch.isalnum() or ch == "-")) for ch in clean):
            raise UnsafeInput(f"metadata name {name!r} is not [a-z0-9-]", field="metadata")
        result[clean] = str(value)
    if sum(len(k) + len(encode_metadata_value(v)) for k, v in result.items()) > MAX_METADATA_BYTES:
        raise BadRequest(f"metadata is larger than {MAX_METADATA_BYTES} bytes", field="metadata")
    return result


def encode_metadata_value(value: str) -> str:
    """ASCII-safe form of a metadata value (HTTP headers carry no UTF-8 or CR/LF)."""
    return quote(value, safe=_METADATA_SAFE)


def decode_metadata_value(value: str) -> str:
    """Inverse of encode_metadata_value."""
    return unquote(value)


def _is_control(ch: str) -> bool:
    # Cs: a lone surrogate (JSON's "\ud800") cannot even be encoded for a store.
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") or ch == "\x00"
