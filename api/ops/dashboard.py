"""rq-dashboard at `/dashboard`: the Flask blueprint behind a2wsgi, admin credentials required."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import rq_dashboard
import rq_dashboard.web
from a2wsgi import WSGIMiddleware
from flask import Flask, Response, request
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.ops.admin import reopen_failed_clip
from api.ops.auth import challenge_header, check_authorization
from clipper.logs import redact
from clipper.settings import Settings
from workers.queues import ALL_QUEUE_NAMES, get_queue, redis_connection

#: How often the dashboard's pages poll their JSON, milliseconds.
POLL_INTERVAL_MS = 2500
#: Threads a2wsgi may use for the (blocking) Flask app.
WSGI_THREADS = 4


def _redact_response(response: Response) -> Response:
    # Defence in depth: workers already redact what they store, but a job stored by an older
    # worker (or by hand) must not show a signed link or a key on the dashboard either.
    if response.mimetype == "application/json" and not response.direct_passthrough:
        response.set_data(redact(response.get_data(as_text=True)))
    return response


def _keep_clip_records_in_step(conn: Redis) -> Callable[[], None]:
    """A before-request hook: the dashboard's Requeue buttons also reopen the clip record,
    or the requeued job would find its clip `failed` and do nothing."""

    def hook() -> None:
        who = request.authorization.username if request.authorization else None
        by = f"dashboard:{who or 'bearer'}"
        if request.endpoint == "rq_dashboard.requeue_job_view" and request.view_args:
            reopen_failed_clip(conn, str(request.view_args["job_id"]), by=by)
        elif request.endpoint == "rq_dashboard.requeue_all" and request.view_args:
            queue = _queue_or_none(str(request.view_args["queue_name"]), conn)
            for job_id in queue.failed_job_registry.get_job_ids(cleanup=False) if queue else []:
                reopen_failed_clip(conn, job_id, by=by)

    return hook


def _queue_or_none(name: str, conn: Redis) -> Queue | None:
    """One of Clipper's queues, or None for a name that is not one."""
    return get_queue(name, conn) if name in ALL_QUEUE_NAMES else None


def build_dashboard_flask(settings: Settings) -> Flask:
    """The Flask app serving rq-dashboard 0.9 for this Redis, reading jobs as JSON."""
    # rq-dashboard's templates link the app-level `static` endpoint, which Flask only creates
    # when the import name has a static folder: name the app after the package.
    app = Flask("rq_dashboard")
    app.config.from_object(rq_dashboard.default_settings)
    app.config["RQ_DASHBOARD_REDIS_URL"] = [settings.redis_url]
    app.config["RQ_DASHBOARD_POLL_INTERVAL"] = POLL_INTERVAL_MS
    app.config["RQ_DASHBOARD_JSON_ENCODER"] = json.JSONEncoder
    # Deleting or emptying in RQ alone would strand clip records as `queued` forever; ops
    # cancel through the admin API instead.
    app.config["RQ_DASHBOARD_DISABLE_DELETE"] = True
    # rq-dashboard 0.9 keeps the serializer in a module-level config; Clipper's jobs use JSON.
    rq_dashboard.web.config.serializer = JSONSerializer
    app.register_blueprint(rq_dashboard.blueprint, url_prefix="")
    rq_dashboard.web.setup_rq_connection(app)
    app.before_request(_keep_clip_records_in_step(redis_connection(settings)))
    app.after_request(_redact_response)
    return app


class AdminOnly:
    """ASGI wrapper: admin Bearer key or Basic admin:key, else 401 (403 for a client key)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let admins through; answer everyone else before the wrapped app sees the request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        check = check_authorization(Headers(scope=scope).get("authorization"), self.settings)
        if check.verdict == "admin":
            await self.app(scope, receive, send)
            return
        status, text = (403, "admin key required") if check.verdict == "client" else (401, "")
        headers = {"content-type": "text/plain; charset=utf-8", "cache-control": "no-store"}
        if status == 401:
            headers |= challenge_header()
            text = "admin credentials required"
        body = text.encode()
        headers["content-length"] = str(len(body))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": body})


def dashboard_app(settings: Settings) -> ASGIApp:
    """The protected ASGI app to mount at `/dashboard`."""
    flask_app: Any = build_dashboard_flask(settings)
    # a2wsgi types environs and scopes as TypedDicts; at run time both sides are ordinary.
    wsgi = WSGIMiddleware(flask_app, workers=WSGI_THREADS)
    return AdminOnly(cast(ASGIApp, wsgi), settings)
