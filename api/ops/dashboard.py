"""rq-dashboard at `/dashboard`: the Flask blueprint behind a2wsgi, admin credentials required."""

from __future__ import annotations

import json
from typing import Any, cast

import rq_dashboard
import rq_dashboard.web
from a2wsgi import WSGIMiddleware
from flask import Flask, Response
from rq.serializers import JSONSerializer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.ops.auth import challenge_header, check_authorization
from clipper.logs import redact
from clipper.settings import Settings

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


def build_dashboard_flask(settings: Settings) -> Flask:
    """The Flask app serving rq-dashboard 0.9 for this Redis, reading jobs as JSON."""
    # rq-dashboard's templates link the app-level `static` endpoint, which Flask only creates
    # when the import name has a static folder: name the app after the package.
    app = Flask("rq_dashboard")
    app.config.from_object(rq_dashboard.default_settings)
    app.config["RQ_DASHBOARD_REDIS_URL"] = [settings.redis_url]
    app.config["RQ_DASHBOARD_POLL_INTERVAL"] = POLL_INTERVAL_MS
    app.config["RQ_DASHBOARD_JSON_ENCODER"] = json.JSONEncoder
    # rq-dashboard 0.9 keeps the serializer in a module-level config; Clipper's jobs use JSON.
    rq_dashboard.web.config.serializer = JSONSerializer
    app.register_blueprint(rq_dashboard.blueprint, url_prefix="")
    rq_dashboard.web.setup_rq_connection(app)
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
