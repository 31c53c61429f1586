"""Helpers the service benchmark's parts share: clip requests, waiting for a link, stats."""

from __future__ import annotations

import math
import time
from typing import Any

from rich.console import Console

from bench.service_stack import ServiceStack

SHORT_KEY, LONG_KEY = "bench/short.mp4", "bench/long.mp4"
CLIP_SECONDS = 10
GOP_SECONDS = 2
#: In-points half a second after a keyframe, as in the engine benchmark.
IN_POINT_AFTER_KEYFRAME_SECONDS = 0.55
POLL_INTERVAL_SECONDS = 0.02
CLIP_TIMEOUT_SECONDS = 300.0

console = Console(stderr=True)
Row = tuple[str, str, str, str, str]  # measurement, measured, target, met, note


class Starts:
    """Fresh in-points per source, two seconds (one GOP) apart, so no request is deduped."""

    def __init__(self, source_seconds: int) -> None:
        self._next = source_seconds / 2 - CLIP_SECONDS / 2 + IN_POINT_AFTER_KEYFRAME_SECONDS
        self._limit = source_seconds - CLIP_SECONDS

    def take(self) -> float:
        """The next unused in-point (wraps to the start of the source at the end)."""
        start = self._next
        self._next += GOP_SECONDS
        if self._next > self._limit:
            self._next = IN_POINT_AFTER_KEYFRAME_SECONDS + GOP_SECONDS
        return start


def clip_body(source: str, start: float, accuracy: str) -> dict[str, Any]:
    """A 10 s clip request."""
    return {
        "source": source,
        "start": round(start, 3),
        "end": round(start + CLIP_SECONDS, 3),
        "accuracy": accuracy,
    }


def submit_and_wait(
    stack: ServiceStack, body: dict[str, Any]
) -> tuple[float, float, dict[str, Any]]:
    """POST, then poll GET until the clip succeeded with a link: (seconds, POST seconds, clip)."""
    # The first POST for a source probes it before answering: long for a long source.
    with stack.client(timeout_seconds=CLIP_TIMEOUT_SECONDS) as client:
        began = time.perf_counter()
        response = client.post("/v1/clips", json=body)
        post_seconds = time.perf_counter() - began
        if response.status_code not in (200, 202):
            raise RuntimeError(f"submit answered {response.status_code}: {response.text}")
        resource: dict[str, Any] = response.json()
        deadline = began + CLIP_TIMEOUT_SECONDS
        while not (resource["status"] == "succeeded" and resource["result"]["download_url"]):
            if resource["status"] in ("failed", "canceled") or time.perf_counter() > deadline:
                raise RuntimeError(f"clip {resource['status']}: {resource}\n{stack.logs()}")
            time.sleep(POLL_INTERVAL_SECONDS)
            resource = client.get(f"/v1/clips/{resource['id']}").json()
        return time.perf_counter() - began, post_seconds, resource


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: the ceil(fraction x n)-th smallest (p99 of 50 is the largest)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered) - 1e-9)) - 1]


def ms_text(seconds: float) -> str:
    """'12 ms' below 10 s, else '12.3 s'."""
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def met_text(ok: bool) -> str:
    """The table's 'met' cell."""
    return "yes" if ok else "NO"
