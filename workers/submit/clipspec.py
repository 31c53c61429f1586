"""Hashes naming a clip's bytes and an owner's request, its length, and the download file
name (checked when given, derived from the source and range when not).

The request itself and its `CutSpec` are `workers.submit.request.ClipRequest`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import posixpath
import re
import unicodedata
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from clipper.engine import MediaInfo
from clipper.engine.plan.parts import FrameRange
from clipper.errors import UnsafeInput
from clipper.spec import CutSpec
from workers.submit.request import ClipRequest

MAX_FILENAME_LENGTH = 200
_UNSAFE_FILENAME = re.compile(r'[\x00-\x1f\x7f/\\"]')
#: Unicode categories refused in a download name, as in object keys: controls, format
#: characters (bidi overrides such as U+202E make `exe.mp4` look like `mp4.exe`, zero-width
#: joiners hide text), lone surrogates, private use, line and paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def validate_filename(filename: str) -> str:
    """Refuse download names that could inject headers or paths, or disguise themselves."""
    if not filename.strip() or len(filename) > MAX_FILENAME_LENGTH:
        raise UnsafeInput(f"filename must be 1..{MAX_FILENAME_LENGTH} characters", field="filename")
    if _UNSAFE_FILENAME.search(filename) or filename in (".", ".."):
        raise UnsafeInput(
            "filename must not contain control characters, quotes or slashes", field="filename"
        )
    if any(unicodedata.category(ch) in _UNSAFE_CATEGORIES for ch in filename):
        raise UnsafeInput(
            "filename must not contain format characters (bidi overrides, zero-width, "
            "private use) or separators",
            field="filename",
        )
    return filename


def ranges_seconds(ranges: list[FrameRange], media: MediaInfo) -> float:
    """Total length of the resolved frame ranges in seconds."""
    frames = sum(r.end - r.start for r in ranges)
    return float(Fraction(frames) / media.frame_rate)


def default_filename(source_key: str, request: ClipRequest, ext: str) -> str:
    """`<source stem>_<start>-<end><ext>`, or the source's own name for a full video."""
    stem, source_ext = posixpath.splitext(posixpath.basename(source_key))
    start, end = request.start, request.end
    if request.segments:
        suffix = f"_{len(request.segments)}segments"
    elif start is None and end is None:
        suffix = ""
    else:
        suffix = f"_{start or 0}-{end or 'end'}"
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{stem}{suffix}").strip("_") or "clip"
    return name[: MAX_FILENAME_LENGTH - len(ext or source_ext)] + (ext or source_ext)


def _plain(value: Any) -> Any:
    """Frame ranges (dataclass, pydantic model, tuple …) as plain JSON data for hashing."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return _plain(dump(mode="json"))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def content_hash(*, source_key: str, source_etag: str, ranges: Sequence[Any], spec: CutSpec) -> str:
    """sha256 naming the clip's bytes: same source version, frames, accuracy and preset."""
    payload = {
        "v": 1,
        "source": source_key,
        "etag": source_etag,
        "ranges": _plain(list(ranges)),
        "accuracy": spec.accuracy.value,
        "preset": spec.preset.value,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def join_hash(content: str, *, filename: str, callback_url: str) -> str:
    """sha256 naming one owner's request: the content plus what differs per request."""
    payload = {"content": content, "filename": filename, "callback_url": callback_url}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def body_hash(body: dict[str, Any]) -> str:
    """sha256 of a request body, key order ignored (for Idempotency-Key comparison)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
