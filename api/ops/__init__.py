"""The ops surface: `/metrics`, `/healthz`, `/readyz`, `/dashboard` and the admin API.

`install_ops(app, settings)` is the one call `api.app.create_app` makes; it expects
`app.state.redis` and `app.state.storage` to be set already.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from api.ops import admin, webhook_secrets
from api.ops.dashboard import dashboard_app
from api.ops.health import Check, FFmpegCheck, health_router
from api.ops.metrics import ClipperCollector, MetricsMiddleware, build_registry, metrics_router
from clipper.logs import secrets_from_settings, setup_logging
from clipper.settings import Settings
from workers.queues import ALL_QUEUE_NAMES

#: Level of the JSON log lines the API writes to stderr.
LOG_LEVEL = "INFO"
#: Socket timeouts of the ops Redis client: a scrape or readiness probe must answer fast.
OPS_REDIS_TIMEOUT_SECONDS = 1.0


def ops_redis(settings: Settings) -> Redis:
    """A Redis client for probes and scrapes: short timeouts and no retries, so an outage
    shows as "not ready" in about a second instead of after redis-py's retry back-off."""
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=OPS_REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=OPS_REDIS_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )


def install_ops(app: FastAPI, settings: Settings) -> None:
    """Set up JSON logging; add metrics middleware and the ops routes and mounts to `app`."""
    # Here rather than in the CLI: uvicorn configures its loggers before it calls the app
    # factory (in every worker process), so this is the last word on where lines go.
    setup_logging(LOG_LEVEL, secrets=secrets_from_settings(settings))
    conn = ops_redis(settings)
    storage = app.state.storage

    def redis_check() -> dict[str, Any]:
        conn.ping()
        return {}

    def storage_check() -> dict[str, Any]:
        storage.check()
        return {"backend": settings.storage}

    checks: dict[str, Check] = {
        "redis": redis_check,
        "storage": storage_check,
        "ffmpeg": FFmpegCheck(settings.ffmpeg_path, settings.ffprobe_path),
    }
    registry, http_metrics = build_registry(ClipperCollector(conn, ALL_QUEUE_NAMES))
    app.state.metrics_registry = registry
    app.add_middleware(MetricsMiddleware, metrics=http_metrics)
    app.include_router(metrics_router(registry))
    router = health_router(checks)
    if any(getattr(route, "path", None) == "/healthz" for route in app.routes):
        router.routes = [r for r in router.routes if getattr(r, "path", None) != "/healthz"]
    app.include_router(router)
    app.include_router(admin.router)
    app.include_router(webhook_secrets.router)
    app.mount("/dashboard", dashboard_app(settings), name="dashboard")
