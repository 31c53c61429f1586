"""Serves the local storage backend's signed links: GET and HEAD /files/{bucket}/{key}.

Use: `app.include_router(make_files_router(get_settings))`, where `get_settings` is any
FastAPI dependency returning the `Settings` (a zero-argument function such as
`clipper.settings.get_settings`, or `api.deps.get_app_settings(request)`). `router` is the
same built on `clipper.settings.get_settings`.

A link carries `expires` (unix seconds), `filename` and `sig` (see `clipper.storage.links`),
signed with `CLIPPER_LINK_SECRET` or, during a rotation, `CLIPPER_LINK_SECRET_PREVIOUS`.
The signature is checked before anything touches the disk; a missing, tampered or expired
link answers 403 problem+json. The file is streamed by Starlette's FileResponse, which
handles `Range` (one range → 206 + Content-Range, several → multipart/byteranges,
unsatisfiable → 416), `If-Range` (the ETag or Last-Modified must match, else the full 200)
and HEAD. The ETag is the object's content hash from the sidecar, the same one `stat_*` shows.
When the configured backend is S3 the route answers 404: S3 serves its own links.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from api.ops.metrics import count_link_issue
from clipper.errors import ClipperError
from clipper.settings import Settings, get_settings
from clipper.storage.base import BUCKETS
from clipper.storage.links import (
    EXPIRES_PARAM,
    FILENAME_PARAM,
    SIGNATURE_PARAM,
    check_local_link,
    content_disposition,
)
from clipper.storage.local import LocalStorage

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://clipper.dev/problems/"


def problem(status: int, code: str, title: str, detail: str) -> JSONResponse:
    """An RFC 9457 problem response (kept local so the router works in any app)."""
    return JSONResponse(
        {"type": PROBLEM_TYPE_BASE + code, "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers={"Cache-Control": "no-store"},
    )


#: Where the API serves the local backend's signed links.
FILES_PATH = "/files/{bucket}/{key:path}"


@dataclass(frozen=True)
class SignedLink:
    """A local link's signature parameters, as received (checked by `check_local_link`)."""

    expires: str | None
    filename: str | None
    sig: str | None


async def signed_link(
    expires: Annotated[str | None, Query(alias=EXPIRES_PARAM)] = None,
    filename: Annotated[str | None, Query(alias=FILENAME_PARAM)] = None,
    sig: Annotated[str | None, Query(alias=SIGNATURE_PARAM)] = None,
) -> SignedLink:
    """The query parameters of a signed link (async: no thread-pool hop)."""
    return SignedLink(expires, filename, sig)


SignedLinkDep = Annotated[SignedLink, Depends(signed_link)]


def make_files_router(get_settings: Callable[..., Settings | Awaitable[Settings]]) -> APIRouter:
    """A router serving local signed links, reading settings through `get_settings`."""
    router = APIRouter(tags=["files"])

    @router.get(
        FILES_PATH,
        summary="Download a stored object through a signed link (local storage only)",
        response_class=FileResponse,
        responses={
            206: {"description": "The requested byte range"},
            403: {"description": "Link expired or tampered", "model": None},
            404: {"description": "No such object"},
            416: {"description": "Range not satisfiable"},
        },
    )
    def serve_file(
        request: Request,
        bucket: str,
        key: str,
        link: SignedLinkDep,
        # A default, not an Annotated alias: with postponed annotations a closure-local alias
        # cannot be resolved when the OpenAPI schema is built.
        settings: Settings = Depends(get_settings),
    ) -> Response:
        """Stream the object a valid signed link names."""
        verdict = check_local_link(
            settings.link_secrets_accepted,
            f"/files/{bucket}/{key}",
            expires=link.expires,
            filename=link.filename,
            signature=link.sig,
        )
        if not verdict.ok:
            count_link_issue(request, verdict.reason)  # ops metric: clipper_link_issues_total
            return problem(403, "link_refused", "Forbidden", verdict.reason)
        if settings.storage != "local" or bucket not in BUCKETS:
            return problem(404, "not_found", "Not found", "no such object")
        try:
            found = LocalStorage(settings).local_file(bucket, key)
        except ClipperError:
            return problem(404, "not_found", "Not found", "no such object")
        headers: dict[str, Any] = {
            "ETag": f'"{found.info.etag}"',
            "Content-Disposition": content_disposition(link.filename or key.rsplit("/", 1)[-1]),
            # Signed links are personal: no shared caches, no transcoding proxies.
            "Cache-Control": "private, no-transform",
            "X-Content-Type-Options": "nosniff",
        }
        return FileResponse(found.path, media_type=found.content_type, headers=headers)

    # HEAD answers like GET without a body; one operation in the schema is enough.
    router.add_api_route(FILES_PATH, serve_file, methods=["HEAD"], include_in_schema=False)
    return router


router = make_files_router(get_settings)
