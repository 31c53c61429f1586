"""Progress of a running clip: engine phases mapped to one percentage, ETA, throttled writes.

The engine reports (phase, fraction) for probing, cutting and verifying; the job adds
uploading. Each phase owns a slice of 0-100 % so the bar never runs backwards.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from redis import Redis
from redis.exceptions import RedisError

from workers import records

#: Slice of the overall percentage each phase covers: (start, end).
PHASE_SPANS: dict[str, tuple[float, float]] = {
    "probing": (0.0, 5.0),
    "cutting": (5.0, 85.0),
    "verifying": (85.0, 95.0),
    "uploading": (95.0, 100.0),
}
#: At most one progress write per this many seconds (phase changes are always written).
WRITE_INTERVAL_SECONDS = 0.5


def overall_percent(phase: str, fraction: float) -> float:
    """Overall percent for a fraction (0..1) of one phase."""
    start, end = PHASE_SPANS.get(phase, (0.0, 100.0))
    return round(start + (end - start) * min(max(fraction, 0.0), 1.0), 1)


def eta_seconds(elapsed_seconds: float, percent: float) -> float | None:
    """Linear estimate of the time left; None until there is something to go on."""
    if percent < 1.0 or elapsed_seconds <= 0:
        return None
    return round(elapsed_seconds * (100.0 - percent) / percent, 1)


class ProgressWriter:
    """A `(phase, fraction)` callback that writes throttled progress to the clip record."""

    def __init__(
        self, conn: Redis, clip_id: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._conn = conn
        self._clip_id = clip_id
        self._clock = clock
        self._started = clock()
        self._last_write = float("-inf")
        self._last_phase = ""
        self._last_percent = 0.0

    def __call__(self, phase: str, fraction: float) -> None:
        """Record progress; never raises (a Redis blip must not fail the cut)."""
        now = self._clock()
        percent = max(overall_percent(phase, fraction), self._last_percent)
        if phase == self._last_phase and now - self._last_write < WRITE_INTERVAL_SECONDS:
            return
        self._last_phase, self._last_write, self._last_percent = phase, now, percent
        progress = {
            "phase": phase,
            "percent": percent,
            "eta_seconds": eta_seconds(now - self._started, percent),
        }
        with contextlib.suppress(RedisError):
            records.update_if_status(self._conn, self._clip_id, ("running",), progress=progress)
