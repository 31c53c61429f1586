"""/v1/clips: submit, read, download (307 to a fresh signed link) and cancel clips."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse

from api.deps import ClientDep, RedisDep, ServicesDep, SettingsDep, StorageDep
from api.models import ClipRequest, ClipResource
from api.problems import ApiProblem
from workers import metrics, records
from workers.cancel import request_cancel
from workers.presenter import clip_resource
from workers.records import ClipRecord
from workers.submit import (
    ClipOrder,
    NeedsThread,
    SubmitContext,
    SubmitMode,
    Submitted,
    submit,
)

router = APIRouter(prefix="/v1", tags=["clips"])

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown API key", **_PROBLEM},
    404: {"description": "no such clip (or not yours)", **_PROBLEM},
    422: {"description": "invalid request; `field` names the culprit", **_PROBLEM},
    503: {"description": "Redis or storage unavailable; see Retry-After", **_PROBLEM},
}


def _owned(conn: RedisDep, client: str, clip_id: str) -> ClipRecord:
    record = records.load(conn, clip_id) if clip_id.startswith("clp_") else None
    if record is None or record.owner != client:
        # Someone else's clip is reported exactly like a missing one.
        raise ApiProblem(404, "not_found", f"no clip {clip_id!r}", field="id")
    return record


@router.post(
    "/clips",
    response_model=ClipResource,
    status_code=202,
    responses={200: {"description": "already exists (dedup) or full video"}, **_ERRORS},
    summary="Request a clip",
)
async def create_clip(
    body: ClipRequest,
    client: ClientDep,
    services: ServicesDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JSONResponse:
    """Queue a clip (202); 200 when it exists already or needs no processing."""
    order = ClipOrder(owner=client, request=body, idempotency_key=idempotency_key)
    # A new clip of a warm source runs right here (two Redis round trips, no thread hop);
    # everything else in the thread pool (see api/inline_submit.py).
    inline = services.inline.try_submit(order)
    result: Submitted
    if isinstance(inline, NeedsThread):
        result, resource = await run_in_threadpool(_submit_in_thread, services.submits, order)
    else:  # always a new, queued clip: no link to sign, no dedup to count
        ctx = services.submits
        result, resource = inline, clip_resource(inline.record, ctx.storage, ctx.settings)
    return JSONResponse(
        resource,
        status_code=result.status_code,
        headers={"Location": f"/v1/clips/{result.record.id}"},
    )


def _submit_in_thread(ctx: SubmitContext, order: ClipOrder) -> tuple[Submitted, dict[str, Any]]:
    result = submit(ctx, order, mode=SubmitMode.THREAD)
    if result.status_code == 200 and result.record.kind == "clip":
        metrics.record_dedup_hit(ctx.conn, "existing")
    return result, clip_resource(result.record, ctx.storage, ctx.settings)


@router.get("/clips/{clip_id}", response_model=ClipResource, responses=_ERRORS)
def get_clip(
    clip_id: str, client: ClientDep, conn: RedisDep, storage: StorageDep, settings: SettingsDep
) -> dict[str, Any]:
    """Status, progress and (once succeeded) a fresh signed download link."""
    return clip_resource(_owned(conn, client, clip_id), storage, settings)


@router.get(
    "/clips/{clip_id}/download",
    status_code=307,
    responses={307: {"description": "redirect to a fresh signed link"}, **_ERRORS},
)
def download_clip(
    clip_id: str, client: ClientDep, conn: RedisDep, storage: StorageDep, settings: SettingsDep
) -> RedirectResponse:
    """307 to a freshly signed link; 409 problem while the clip is not ready."""
    record = _owned(conn, client, clip_id)
    if record.status != "succeeded":
        raise ApiProblem(409, "clip_not_ready", f"the clip is {record.status}", field="id")
    url, _ = storage.download_url(
        record.bucket,
        record.object_key,
        filename=record.filename,
        ttl_seconds=settings.link_ttl_seconds,
    )
    return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})


@router.delete("/clips/{clip_id}", response_model=ClipResource, responses=_ERRORS)
def cancel_clip(
    clip_id: str, client: ClientDep, conn: RedisDep, storage: StorageDep, settings: SettingsDep
) -> dict[str, Any]:
    """Cancel a queued or running clip (its FFmpeg is stopped); 409 once it has finished."""
    record = _owned(conn, client, clip_id)
    if record.status in records.ACTIVE:
        request_cancel(conn, clip_id)
        record = _owned(conn, client, clip_id)
    if record.status in ("succeeded", "failed"):
        raise ApiProblem(409, "clip_finished", f"the clip already {record.status}", field="id")
    return clip_resource(record, storage, settings)

