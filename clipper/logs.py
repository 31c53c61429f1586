"""Structured JSON logs, redaction of secrets (signed-link signatures, credentials, keys), and
the public form of an error text (no internal names).

`redact(text)` is pure apart from the process-wide set of known secrets that
`register_secrets()` fills at start-up; the engine can run FFmpeg's error text through it
before the text reaches an exception, a log line or a job record. `public_text(text)` is
pure: what a client may read of FFmpeg's or a dependency's words (URLs, paths, addresses
and host names taken out); operators keep the redacted original.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import IO, Any, Protocol
from urllib.parse import unquote, urlsplit

#: What a redacted value is replaced with (no quotes or backslashes: safe inside JSON text).
REDACTED = "[REDACTED]"

#: Secrets shorter than this are not searched for verbatim: they would shred ordinary text.
MIN_SECRET_LENGTH = 6

#: Query parameters whose values are signatures or credentials (S3 SigV4 and our own links).
_SIGNATURE_PARAM_NAMES = (
    r"X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|AWSAccessKeyId"
    r"|sig|signature|token|access_token|api_key|apikey|key_secret"
)
_QUERY_PARAM = re.compile(rf"(?i)([?&;](?:{_SIGNATURE_PARAM_NAMES})=)[^&#\s\"'<>]+")
# `Authorization: Bearer abc`, `authorization=Basic abc`, `'Authorization': 'Bearer abc'`.
_AUTH_HEADER = re.compile(
    r"(?i)(\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
    r"(?:(bearer|basic|digest|aws4-hmac-sha256)\s+)?[^\s\"',}]+(?:[^\"'\n,}]*)"
)
_BARE_BEARER = re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{6,}")
# `scheme://user:password@host` → keep the user, drop the password.
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@\"']*:)[^/\s@\"']+@")
# `password=…`, `"secret_key": "…"`, `CLIPPER_S3_SECRET_KEY=…`.
_KEY_VALUE = re.compile(
    r"(?i)(\b[\w-]*(?:password|passwd|secret|secret_key|api_key|apikey|private_key)"
    r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',&}]+"
)

# A cheap first look: every pattern above needs one of these literals to match at all, so
# a string without any of them (most log text: access lines, state changes, ids, numbers)
# skips the five substitutions. Keep it in step with the patterns (tests/core/test_logs.py
# checks every pattern's examples through `redact`).
_TRIGGER = re.compile(
    rf"(?i)[?&;](?:{_SIGNATURE_PARAM_NAMES})=|authorization|bearer|://"
    r"|passw(?:or)?d|secret|api_?key|private_key"
)

# What `public_text` keeps from a client: URLs (signed storage links, tcp://host:port),
# `file:` and absolute paths (work folders, storage folders), IP addresses, host names that
# failed to resolve, and the pointer values in FFmpeg's `[demuxer @ 0x…]` log prefixes.
_URL = re.compile(r"""\b[a-zA-Z][a-zA-Z0-9+.-]*:(?://|/)[^\s'"]+|\bfile:[^\s'"]+""")
_PATH = re.compile(r"""(?<![\w.:/-])/[^\s'"]+""")
_ADDRESS = re.compile(
    r"\[[0-9a-fA-F:]*:[0-9a-fA-F:]*\](?::\d+)?|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"
)
_HOSTNAME = re.compile(r"(resolve host(?:name)?\s+)[^\s:]+", re.IGNORECASE)
_POINTER = re.compile(r"\s@\s0x[0-9a-fA-F]+\]")
_LEADING_NAME = re.compile(r"^(?:<url>|<file>)[:.,]?\s*")


def public_text(text: str) -> str:
    """`text` (FFmpeg's or a dependency's words) without URLs, paths, addresses or host
    names; `name: message` lines lose the name."""
    lines = []
    for line in text.splitlines():
        line = _POINTER.sub("]", line)
        line = _URL.sub(lambda m: "<url>" + _trailing(m.group()), line)
        line = _PATH.sub(lambda m: "<file>" + _trailing(m.group()), line)
        line = _ADDRESS.sub("<address>", line)
        line = _HOSTNAME.sub(r"\1<host>", line)
        line = _LEADING_NAME.sub("", line.strip())
        if line:
            lines.append(line)
    return "\n".join(lines)


def _trailing(match: str) -> str:
    """The punctuation FFmpeg puts after a name (`url: message`), kept outside the name."""
    return match[len(match.rstrip(":.,;)")) :]


_secrets_lock = threading.Lock()
_known_secrets: frozenset[str] = frozenset()
#: The registered secrets as one alternation, longest first (so a secret containing another
#: is removed whole); None when there are none. Rebuilt on registration, not per call.
_known_pattern: re.Pattern[str] | None = None


def _secret_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    usable = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, usable))) if usable else None


def register_secrets(values: Iterable[str]) -> None:
    """Add secrets (API keys, link secret, storage keys) that `redact` removes verbatim."""
    global _known_secrets, _known_pattern
    fresh = {v for v in values if v and len(v) >= MIN_SECRET_LENGTH}
    with _secrets_lock:
        _known_secrets = _known_secrets | fresh
        _known_pattern = _secret_pattern(_known_secrets)


def clear_secrets() -> None:
    """Forget registered secrets (tests)."""
    global _known_secrets, _known_pattern
    with _secrets_lock:
        _known_secrets = frozenset()
        _known_pattern = None


class _HasSecrets(Protocol):
    @property
    def api_key_names(self) -> dict[str, str]: ...
    @property
    def admin_key_names(self) -> dict[str, str]: ...


def secrets_from_settings(settings: _HasSecrets) -> list[str]:
    """Every secret value a `Settings` object holds (client and admin keys, link and S3
    secrets, the Redis password)."""
    values = [*settings.api_key_names, *settings.admin_key_names]
    for name in ("link_secret", "link_secret_previous", "s3_secret_key"):
        secret = getattr(settings, name, None)
        if secret is not None:
            values.append(secret.get_secret_value())
    redis_password = urlsplit(str(getattr(settings, "redis_url", ""))).password
    if redis_password:
        values.append(unquote(redis_password))
    return values


def _auth_sub(match: re.Match[str]) -> str:
    scheme = match.group(2)
    return f"{match.group(1)}{scheme + ' ' if scheme else ''}{REDACTED}"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return `text` with link signatures, credentials, auth headers and known secrets masked."""
    if not text:
        return text
    pattern = _known_pattern
    extra = tuple(secrets)
    if extra:
        pattern = _secret_pattern({*_known_secrets, *extra})
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    if _TRIGGER.search(text) is None:
        return text
    text = _QUERY_PARAM.sub(rf"\g<1>{REDACTED}", text)
    text = _AUTH_HEADER.sub(_auth_sub, text)
    text = _BARE_BEARER.sub(rf"\g<1>{REDACTED}", text)
    text = _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", text)
    return _KEY_VALUE.sub(rf"\g<1>{REDACTED}", text)


def redact_value(value: Any) -> Any:
    """Redact every string inside a JSON-like value (dicts, lists, scalars).

    Anything that is not JSON data is redacted as its `str()`: that is what the log line
    would show (json.dumps(default=str)), so it must not slip past as an object.
    """
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return redact(str(value))


# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, clip_id, job_id and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as a redacted JSON line."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "clip_id": getattr(record, "clip_id", None),
            "job_id": getattr(record, "job_id", None),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(redact_value(entry), default=str, ensure_ascii=False)


_HANDLER_NAME = "clipper-json"


class _LiveStderrHandler(logging.StreamHandler[IO[str]]):
    """Writes to whatever `sys.stderr` is at emit time (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        """Emit to the current stderr."""
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(
    level: int | str = "INFO", *, secrets: Iterable[str] = (), stream: IO[str] | None = None
) -> logging.Handler:
    """Send every log record (ours, uvicorn's, rq's) to `stream` as redacted JSON lines."""
    register_secrets(secrets)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    handler: logging.StreamHandler[IO[str]] = (
        logging.StreamHandler(stream) if stream is not None else _LiveStderrHandler()
    )
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries that install their own plain-text handlers would bypass redaction.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "rq.worker", "rq"):
        lib = logging.getLogger(name)
        lib.handlers.clear()
        lib.propagate = True
    return handler


#: Logger for clip state changes; ops filter on `event == "clip.state"`.
state_logger = logging.getLogger("clipper.state")


def log_state_change(
    clip_id: str, status: str, *, job_id: str | None = None, **fields: Any
) -> None:
    """Log one line for a clip entering `status` (queued, running, succeeded, failed, canceled)."""
    state_logger.info(
        "clip %s %s",
        clip_id,
        status,
        extra={"event": "clip.state", "clip_id": clip_id, "job_id": job_id, "status": status}
        | fields,
    )
