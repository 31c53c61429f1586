"""The core's error taxonomy.

`api/` maps these to RFC 9457 problem details, `workers/` to retry / no retry. Nothing else
needs to know which exception class a failure came from.
"""

from __future__ import annotations


class ClipperError(Exception):
    """Base class: `code` is a stable machine-readable name, `retryable` says whether trying
    the same work again later can succeed.

    `message` is what clients see (API answers, a clip's `error`): it names the problem and
    never an internal host, port, bucket, object path or URL. `detail` is for operators only:
    it joins the message in `str(exc)`, so logs and the stored traceback (dashboard, admin
    API) carry it, redacted like every log line.
    """

    code = "clipper_error"
    retryable = False

    def __init__(self, message: str, *, field: str | None = None, detail: str = "") -> None:
        super().__init__(f"{message} [{detail}]" if detail else message)
        self.message = message
        self.field = field
        self.detail = detail

    def to_dict(self) -> dict[str, str | None]:
        """What clients see: code, message and field (never the operator detail)."""
        return {"code": self.code, "message": self.message, "field": self.field}


class BadRequest(ClipperError):
    """The request itself is wrong (range past the end, end before start, bad timecode)."""

    code = "bad_request"


class UnsafeInput(BadRequest):
    """A name, path or URL that could be used to attack FFmpeg, the file system or the network."""

    code = "unsafe_input"


class NotFound(ClipperError):
    """A source, clip or object that does not exist."""

    code = "not_found"


class InvalidMedia(ClipperError):
    """The source is not a video we can read (corrupt, not media, no video stream)."""

    code = "invalid_media"


class VerificationFailed(ClipperError):
    """An output did not pass verification; it must never be delivered."""

    code = "verification_failed"


class EngineError(ClipperError):
    """FFmpeg failed in a way not explained by the input (a bug or an unsupported case)."""

    code = "engine_error"


class TransientError(ClipperError):
    """Storage, network or Redis trouble: the same work may succeed later."""

    code = "transient"
    retryable = True


class Timeout(TransientError):
    """FFmpeg ran past its wall-clock limit and was killed."""

    code = "timeout"


class WorkDiskFull(TransientError):
    """The disk a cut writes its temp files to is full (ENOSPC); space may free up."""

    code = "disk_full"


class Canceled(ClipperError):
    """The job was canceled by a user or an operator."""

    code = "canceled"
