"""Download filenames (RFC 6266 Content-Disposition) and the local backend's HMAC-signed links.

A local link looks like
`{public_base_url}/files/{bucket}/{key}?expires={unix}&filename={name}&sig={hex}`; the
signature is HMAC-SHA256 with `settings.link_secret` over method, path, expiry and filename
(see `_string_to_sign`), so none of them can be changed without the link failing. During a
rotation of the link secret, links signed with `settings.link_secret_previous` still verify.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from clipper.storage.base import Bucket

#: Longest download filename kept (characters); longer names are cut before the extension.
MAX_FILENAME_CHARS = 200

#: Used when nothing printable is left of the requested name.
DEFAULT_FILENAME = "download"

#: Query parameter names of a local signed link.
EXPIRES_PARAM = "expires"
FILENAME_PARAM = "filename"
SIGNATURE_PARAM = "sig"

_ASCII_UNSAFE = re.compile(r"[^A-Za-z0-9._()+ -]")
_UNDERSCORES = re.compile(r"_{2,}")
# RFC 5987 attr-char minus the ones quote() always keeps.
_ATTR_SAFE = "!#$&+^`|"


def safe_filename(filename: str) -> str:
    """The requested name without control characters, quotes or path separators (Unicode kept)."""
    name = unicodedata.normalize("NFC", filename)
    name = "".join(
        "_" if ch in '/\\"' else ch
        for ch in name
        if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp")
    )
    # A leading dot would make a hidden file; surrounding blanks confuse shells and users.
    name = name.strip().lstrip(".").strip()
    if len(name) > MAX_FILENAME_CHARS:
        _stem, dot, ext = name.rpartition(".")
        ext = ext if dot and 0 < len(ext) <= 10 else ""
        name = name[: MAX_FILENAME_CHARS - len(ext) - 1].rstrip() + ("." + ext if ext else "")
    return name or DEFAULT_FILENAME


def ascii_filename(filename: str) -> str:
    """The `filename=` fallback: accents stripped, anything else outside a safe set → '_'."""
    decomposed = unicodedata.normalize("NFKD", safe_filename(filename))
    # Accents (combining marks) go; any other non-ASCII character becomes one '_'.
    kept = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    name = _UNDERSCORES.sub("_", _ASCII_UNSAFE.sub("_", kept)).strip().lstrip(".")
    return name if name.strip("_ ") else DEFAULT_FILENAME


def content_disposition(filename: str) -> str:
    """`attachment; filename="ascii"; filename*=UTF-8''…` (RFC 6266), safe as a header value."""
    name = safe_filename(filename)
    encoded = quote(name, safe=_ATTR_SAFE)
    return f"attachment; filename=\"{ascii_filename(name)}\"; filename*=UTF-8''{encoded}"


@dataclass(frozen=True)
class LinkCheck:
    """The outcome of checking a local signed link: ok, or the reason it is refused."""

    ok: bool
    reason: str = ""


def _string_to_sign(method: str, path: str, expires_unix: int, filename: str) -> bytes:
    # Newlines separate the fields; none of them can hold one (keys and filenames are cleaned).
    return f"{method.upper()}\n{path}\n{expires_unix}\n{filename}".encode()


def link_path(bucket: Bucket, key: str) -> str:
    """The signed (unencoded) path of a local link."""
    return f"/files/{bucket}/{key}"


def sign(secret: str, method: str, path: str, expires_unix: int, filename: str) -> str:
    """Hex HMAC-SHA256 of a local link's method, path, expiry and filename."""
    message = _string_to_sign(method, path, expires_unix, filename)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def build_local_link(
    base_url: str, secret: str, bucket: Bucket, key: str, *, filename: str, expires_unix: int
) -> str:
    """A signed GET link for the files route; `expires_unix` may be in the past (tests)."""
    name = safe_filename(filename)
    signature = sign(secret, "GET", link_path(bucket, key), expires_unix, name)
    query = urlencode(
        {EXPIRES_PARAM: expires_unix, FILENAME_PARAM: name, SIGNATURE_PARAM: signature},
        quote_via=quote,
    )
    return f"{base_url.rstrip('/')}/files/{bucket}/{quote(key, safe='/')}?{query}"


def check_local_link(
    secrets: Sequence[str],
    path: str,
    *,
    expires: str | None,
    filename: str | None,
    signature: str | None,
    now_unix: float | None = None,
) -> LinkCheck:
    """Verify a local link as received (path unencoded); HEAD is checked as GET.

    `secrets` are every secret a link may be signed with (the current link secret and,
    during a rotation, the previous one): a signature by any of them is accepted."""
    if not expires or not signature or not signature.isascii() or filename is None:
        return LinkCheck(False, "the link is not signed")
    try:
        expires_unix = int(expires)
    except ValueError:
        return LinkCheck(False, "the link is not signed")
    offered = signature.lower()
    # Compare with every secret, and before looking at the expiry, so timing says nothing
    # about which secret or which part was wrong.
    matches = [
        hmac.compare_digest(sign(secret, "GET", path, expires_unix, filename), offered)
        for secret in secrets
    ]
    if not any(matches):
        return LinkCheck(False, "the link signature does not match")
    if expires_unix <= (time.time() if now_unix is None else now_unix):
        return LinkCheck(False, "the link has expired")
    return LinkCheck(True)
