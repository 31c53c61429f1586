"""The FastAPI application factory: one router per resource, problem+json for every error.

`create_app(settings)` builds everything from one Settings object (tests pass their own).
`/healthz` is trivial on purpose (the process answers); readiness lives in the ops routes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.deps import Services, get_app_settings
from api.inline_submit import InlineSubmits
from api.limits import BodyLimit
from api.ops import install_ops
from api.problems import install_problem_handlers
from api.routes import clips, sources, webhooks
from api.routes.files import make_files_router
from clipper import __version__
from clipper.errors import ClipperError
from clipper.settings import Settings, get_settings
from clipper.storage import open_storage
from workers.queues import redis_connection
from workers.submit import SubmitContext
from workers.submit.source_stats import SourceStats

log = logging.getLogger(__name__)

DESCRIPTION = """Frame-exact video clips behind signed, expiring download links.

Authenticate with `Authorization: Bearer <API key>`. Every error is RFC 9457
`application/problem+json` with the offending `field` named."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for these settings (default: from the environment)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            app.state.storage.ensure_buckets()
        except ClipperError as exc:
            # Start anyway: requests answer 503 until storage is back, readiness says why.
            log.warning("storage not ready at start-up: %s", exc.code)
        yield
        app.state.redis.close()
        app.state.services.inline.close()

    app = FastAPI(
        title="Clipper",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.redis = redis_connection(settings)
    app.state.storage = open_storage(settings)
    source_stats = SourceStats(app.state.storage, settings.source_stat_ttl_seconds)
    app.state.services = Services(
        submits=SubmitContext(app.state.redis, app.state.storage, settings, source_stats),
        inline=InlineSubmits.from_settings(settings, app.state.storage, source_stats),
    )
    install_problem_handlers(app)
    app.add_middleware(BodyLimit)  # inside the metrics middleware: 413s are counted too

    @app.get("/healthz", tags=["ops"], include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers (async: no thread-pool hop for a constant)."""
        return {"status": "ok"}

    app.include_router(clips.router)
    app.include_router(sources.router)
    app.include_router(webhooks.router)
    app.webhooks.include_router(webhooks.events)  # documented, not served
    app.include_router(make_files_router(get_app_settings))
    install_ops(app, settings)  # ops: /metrics, /readyz, /dashboard, /v1/admin (api/ops)
    return app
