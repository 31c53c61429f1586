"""RFC 9457 problem details for every error the API returns.

Body: `{"type", "title", "status", "detail"}` plus `field` (the offending request field) and,
for validation, `errors: [{"field", "message"}]`; media type `application/problem+json`.
The core's error taxonomy maps here and nowhere else: bad request / unsafe input / invalid
media → 422, not found → 404, transient (storage, Redis) → 503 with Retry-After.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from clipper.errors import (
    BadRequest,
    ClipperError,
    InvalidMedia,
    NotFound,
    TransientError,
)
from clipper.logs import public_text, redact

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: Where problem types live; `type` is this plus the stable error code.
PROBLEM_TYPE_BASE = "https://clipper.dev/problems/"
#: Seconds a client should wait after a 503 before trying again.
RETRY_AFTER_SECONDS = 5

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    500: "Internal server error",
    503: "Service unavailable",
}


class ApiProblem(Exception):
    """Raise from a route to answer with a problem (status, code, detail, optional field)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.headers = headers or {}


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if field is not None:
        body["field"] = field
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def unavailable(detail: str) -> JSONResponse:
    """503 with Retry-After: a dependency (Redis, storage) is down."""
    return problem_response(
        503, "unavailable", detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    """Pydantic's error location as a field name, e.g. `segments[0].end`."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            # A body that is not JSON at all has no field to blame but the body.
            "field": "body" if err.get("type") == "json_invalid" else _loc_to_field(err["loc"]),
            "message": err.get("msg", "invalid"),
        }
        for err in exc.errors()
    ]
    first = errors[0]["field"] if errors else None
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem_response(422, "validation_error", detail, field=first, errors=errors)


#: FastAPI's 400 for a body its JSON parser gave up on (the cause is chained).
_BODY_PARSE_DETAIL = "There was an error parsing the body"


def _unparsable_body(exc: StarletteHTTPException) -> JSONResponse:
    cause = exc.__cause__
    if isinstance(cause, RecursionError):
        detail = "the body is nested too deeply"
    elif isinstance(cause, UnicodeDecodeError):
        detail = "the body is not valid UTF-8"
    else:
        detail = "the body is not valid JSON"
    return problem_response(400, "invalid_body", detail, field="body")


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _BODY_PARSE_DETAIL:
        return _unparsable_body(exc)
    code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
        exc.status_code, "http_error"
    )
    return problem_response(exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {}))


async def _api_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(exc.status, exc.code, exc.detail, field=exc.field, headers=exc.headers)


async def _clipper(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ClipperError)
    if exc.detail:  # operators get what the client does not: the redacted detail
        log.warning("%s %s: %s", request.method, request.url.path, redact(str(exc)))
    if isinstance(exc, TransientError):
        return unavailable("a storage or network dependency is unavailable; retry later")
    # The message names the problem; public_text makes sure no internal name slipped in.
    detail = public_text(exc.message)
    if isinstance(exc, NotFound):
        return problem_response(404, exc.code, detail, field=exc.field)
    if isinstance(exc, InvalidMedia):
        return problem_response(422, exc.code, detail, field=exc.field or "source")
    if isinstance(exc, BadRequest):
        return problem_response(422, exc.code, detail, field=exc.field)
    log.error("unexpected %s: %s", type(exc).__name__, exc.code)
    return problem_response(500, exc.code, "the request could not be completed")


async def _redis(_: Request, exc: Exception) -> JSONResponse:
    log.warning("redis unavailable: %s", type(exc).__name__)
    return unavailable("the queue (Redis) is unavailable; retry later")


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled %s", type(exc).__name__, exc_info=exc)
    return problem_response(500, "internal", "an unexpected error occurred")


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error (ours, FastAPI's, Starlette's) a problem+json response."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(ClipperError, _clipper)
    app.add_exception_handler(RedisError, _redis)
    app.add_exception_handler(Exception, _unexpected)
