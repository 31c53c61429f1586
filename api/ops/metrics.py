"""`/metrics`: cluster-wide clip metrics from Redis, queue depths, and this process's HTTP metrics.

Clip counters and histograms are written to Redis by workers and API replicas
(`workers.metrics`) and read here at scrape time, so every replica exports the same cluster
totals: aggregate them with `max`, not `sum`. HTTP request metrics are per process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clipper.logs import redact
from workers.metrics import read_snapshot, record_link_issue

log = logging.getLogger(__name__)

#: Every exported name starts with this.
NAMESPACE = "clipper"

#: Help text of the Redis-backed metrics (names as recorded by `workers.metrics`).
HELP = {
    "clips_total": "Clips that entered a status (queued, running, succeeded, failed, canceled).",
    "clips_by_strategy_total": "Succeeded clips by cut strategy (copy, smart, reencode).",
    "media_seconds_total": "Seconds of media delivered, by strategy.",
    "job_wall_seconds_total": "Wall-clock seconds spent on succeeded jobs, by strategy.",
    "bytes_read_total": "Bytes read from storage by workers.",
    "bytes_written_total": "Bytes written to storage by workers.",
    "failures_total": "Failed clips by error class.",
    "dedup_hits_total": "Requests answered by an existing clip or joined to one in flight.",
    "link_issues_total": "Download-link problems (expired, invalid signature, signing failed).",
    "job_duration_seconds": "Wall-clock duration of clip jobs, by outcome.",
    "realtime_factor": "Media seconds cut per wall-clock second, per job.",
}

#: RQ registries exported per queue, besides the waiting jobs themselves.
REGISTRY_STATES = ("started", "failed", "scheduled", "deferred", "finished", "canceled")


class ClipperCollector(Collector):
    """Reads the Redis-backed clip metrics and the RQ queues at scrape time."""

    def __init__(self, connection: Redis, queue_names: Sequence[str]) -> None:
        self.connection = connection
        self.queue_names = tuple(queue_names)

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: names depend on what Redis holds at scrape time."""
        return []

    def collect(self) -> Iterable[Metric]:
        """Yield every metric; Redis trouble yields `clipper_redis_up 0` instead of an error."""
        up = GaugeMetricFamily(f"{NAMESPACE}_redis_up", "1 when Redis answered this scrape.")
        try:
            families = [*self._stored(), *self._queues()]
        except RedisError as exc:
            log.warning("metrics scrape without Redis: %s", redact(str(exc)))
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *families]

    def _stored(self) -> list[Metric]:
        snap = read_snapshot(self.connection)
        out: list[Metric] = []
        for name, series in sorted(snap.counters.items()):
            label_names = [k for k, _ in next(iter(series))]
            family = CounterMetricFamily(
                f"{NAMESPACE}_{name}", HELP.get(name, name), labels=label_names
            )
            for labels, value in sorted(series.items()):
                family.add_metric([v for _, v in labels], value)
            out.append(family)
        for name, hists in sorted(snap.histograms.items()):
            label_names = [k for k, _ in next(iter(hists))]
            hfamily = HistogramMetricFamily(
                f"{NAMESPACE}_{name}", HELP.get(name, name), labels=label_names
            )
            for labels, hist in sorted(hists.items()):
                hfamily.add_metric([v for _, v in labels], hist.buckets, hist.sum)
            out.append(hfamily)
        return out

    def _queues(self) -> list[Metric]:
        depth = GaugeMetricFamily(
            f"{NAMESPACE}_queue_depth", "Jobs waiting in each queue.", labels=["queue"]
        )
        jobs = GaugeMetricFamily(
            f"{NAMESPACE}_queue_jobs",
            "Jobs in each RQ registry, per queue.",
            labels=["queue", "state"],
        )
        for name in self.queue_names:
            queue = Queue(name, connection=self.connection)
            depth.add_metric([name], queue.count)
            for state in REGISTRY_STATES:
                registry = getattr(queue, f"{state}_job_registry")
                jobs.add_metric([name, state], registry.get_job_count(cleanup=False))
        workers = GaugeMetricFamily(f"{NAMESPACE}_workers", "RQ workers alive.")
        workers.add_metric([], Worker.count(connection=self.connection))
        return [depth, jobs, workers]


class HttpMetrics:
    """Per-process request counter and latency histogram, labelled by route template."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            f"{NAMESPACE}_http_requests",
            "HTTP requests answered by this process.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            f"{NAMESPACE}_http_request_duration_seconds",
            "HTTP request latency in this process.",
            ["method", "route"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )


class MetricsMiddleware:
    """Pure ASGI middleware (no per-request task overhead) feeding `HttpMetrics`."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and count it under its route template (never the raw path)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)


def build_registry(collector: Collector | None) -> tuple[CollectorRegistry, HttpMetrics]:
    """A registry of this app's own (not the global one, so apps in tests do not collide)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    if collector is not None:
        registry.register(collector)
    return registry, HttpMetrics(registry)


def metrics_router(registry: CollectorRegistry) -> APIRouter:
    """Route `/metrics` serving `registry` in the Prometheus text format."""
    router = APIRouter(tags=["ops"])

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        payload = await run_in_threadpool(generate_latest, registry)
        return Response(payload, media_type=CONTENT_TYPE_LATEST)

    return router


def link_issue_code(reason: str) -> str:
    """A metric label for why a signed link was refused (from the link checker's reason)."""
    text = reason.lower()
    if "expired" in text:
        return "expired"
    if "does not match" in text:
        return "invalid_signature"
    if "not signed" in text:
        return "unsigned"
    return "refused"


def count_link_issue(request: Request, reason: str) -> None:
    """Count a refused download link, when the app has a Redis client (the full API does)."""
    conn = getattr(request.app.state, "redis", None)
    if isinstance(conn, Redis):
        record_link_issue(conn, link_issue_code(reason))
