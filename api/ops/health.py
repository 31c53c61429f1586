"""Liveness (`/healthz`) and readiness (`/readyz`: Redis, storage, FFmpeg) endpoints."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from clipper.logs import public_text, redact

log = logging.getLogger(__name__)

#: Longest a single readiness probe may take; a hung dependency is as bad as a dead one.
CHECK_TIMEOUT_SECONDS = 2.0
#: How long a successful FFmpeg check is trusted: the binaries do not vanish between scrapes.
FFMPEG_CHECK_TTL_SECONDS = 300.0
#: Timeout for `ffmpeg -version`; it answers in milliseconds when healthy.
FFMPEG_VERSION_TIMEOUT_SECONDS = 5.0

Check = Callable[[], dict[str, Any] | None]


@dataclass
class FFmpegCheck:
    """Runs `ffmpeg -version` and `ffprobe -version` once and caches a success for a while."""

    ffmpeg_path: str = "ffmpeg"
    ffprobe_path: str = "ffprobe"
    ttl_seconds: float = FFMPEG_CHECK_TTL_SECONDS
    _ok_until: float = 0.0
    _detail: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> dict[str, Any]:
        """Detail (versions) when both binaries run; raises RuntimeError otherwise."""
        with self._lock:
            if time.monotonic() < self._ok_until:
                return self._detail | {"cached": True}
            detail = {
                "ffmpeg": self._version(self.ffmpeg_path),
                "ffprobe": self._version(self.ffprobe_path),
            }
            self._detail = detail
            self._ok_until = time.monotonic() + self.ttl_seconds
            return detail | {"cached": False}

    @staticmethod
    def _version(path: str) -> str:
        try:
            done = subprocess.run(
                [path, "-hide_banner", "-version"],
                capture_output=True,
                text=True,
                timeout=FFMPEG_VERSION_TIMEOUT_SECONDS,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f"{path}: {exc}") from exc
        if done.returncode != 0:
            raise RuntimeError(f"{path} -version exited with {done.returncode}")
        first = done.stdout.splitlines()[0] if done.stdout else ""
        return first.split(" Copyright")[0]


async def _run_check(name: str, check: Check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(asyncio.to_thread(check), CHECK_TIMEOUT_SECONDS)
        result: dict[str, Any] = {"ready": True} | (detail or {})
    except TimeoutError:
        result = {"ready": False, "error": f"no answer within {CHECK_TIMEOUT_SECONDS} s"}
    except Exception as exc:  # any failure of a dependency means "not ready", with the reason
        # The answer is public (load balancers call it): the reason without internal names;
        # the log line keeps the redacted detail (which host, which port).
        log.warning("readiness: %s not ready: %s", name, redact(f"{type(exc).__name__}: {exc}"))
        reason = getattr(exc, "message", None) or str(exc)
        result = {"ready": False, "error": public_text(f"{type(exc).__name__}: {reason}")}
    result["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def health_router(checks: dict[str, Check]) -> APIRouter:
    """Routes `/healthz` and `/readyz`; `checks` maps a component name to a blocking probe."""
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: Redis, storage and FFmpeg usable",
        responses={503: {"description": "a component is not ready"}},
    )
    async def readyz() -> JSONResponse:
        names = list(checks)
        results = await asyncio.gather(*(_run_check(n, checks[n]) for n in names))
        components = dict(zip(names, results, strict=True))
        ready = all(r["ready"] for r in results)
        body = {"status": "ready" if ready else "not_ready", "components": components}
        return JSONResponse(body, status_code=200 if ready else 503)

    return router
