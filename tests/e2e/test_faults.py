"""Fault injection on the real stack: processes killed by pid, Redis and S3 taken away.

Each case asserts on the clip record, the objects in storage and open multipart uploads, the
workers' temp folder and the process table, and records its figures (seconds to recovery,
objects, temp entries, processes), printed at the end of the run. The bounds are the
operator guarantees in docs/operations.md: a clip whose worker, work-horse or host dies is
re-queued or picked up within 120 s; a retry runs within 90 s of its time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.app import upload_source
from tests.fixtures.faults import (
    FaultFigures,
    FaultStack,
    alive,
    eventually,
    ffmpeg_pids,
    temp_entries,
)

pytestmark = pytest.mark.slow

#: A dead worker's clip is back in the queue or running again within this (operations.md).
RECOVERY_BOUND_SECONDS = 120.0

StackFactory = Callable[..., FaultStack]


@pytest.fixture(scope="module")
def long_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 s of 640x360 H.264 + AAC: transcoding 40 s of it on one thread takes seconds."""
    path = tmp_path_factory.mktemp("faults-media") / "long.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
         "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440",
         "-t", "60", "-c:v", "libx264", "-preset", "ultrafast", "-g", "60",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
        check=True,
    )  # fmt: skip
    return path


def _source(stack: FaultStack, path: Path) -> str:
    key = f"faults/{uuid.uuid4().hex[:8]}.mp4"
    upload_source(stack.settings, key, path)
    return key


def _record(stack: FaultStack, clip_id: str) -> dict[str, Any]:
    from workers import records

    record = records.load(stack.redis, clip_id)
    assert record is not None
    return {"status": record.status, "error": record.error, "started_at": record.started_at,
            "progress": record.progress}  # fmt: skip


def _cutting(stack: FaultStack, clip_id: str) -> bool:
    record = _record(stack, clip_id)
    return (
        record["status"] == "running"
        and record["progress"].get("phase") == "cutting"
        and bool(ffmpeg_pids(stack.work_dir))
    )


def _restarted(stack: FaultStack, clip_id: str, first_start: str) -> bool:
    """A new attempt began (run_clip stamps `started_at` at each start)."""
    return _record(stack, clip_id)["started_at"] not in ("", first_start)


def _since(start: float) -> float:
    return time.monotonic() - start


def _settle_and_measure(stack: FaultStack, client: Any, clip_id: str) -> dict[str, Any]:
    done = stack.wait_for(client, clip_id, ("succeeded", "failed", "canceled"), 120)
    assert done["status"] == "succeeded", f"{done}\n{stack.logs()}"
    assert eventually(lambda: not ffmpeg_pids(stack.work_dir), 10)
    assert eventually(lambda: not temp_entries(stack.work_dir), 10), temp_entries(stack.work_dir)
    objects = stack.clip_objects()
    uploads = stack.open_uploads()
    assert len(objects) == 1, objects
    assert uploads == 0
    return {"objects": len(objects), "open_uploads": uploads,
            "temp_entries": len(temp_entries(stack.work_dir)),
            "ffmpeg": len(ffmpeg_pids(stack.work_dir)), "processes": stack.processes()}  # fmt: skip


def test_work_horse_sigkilled_mid_ffmpeg(
    fault_stack: StackFactory, long_source: Path, fault_figures: FaultFigures
) -> None:
    stack = fault_stack(ffmpeg_threads=1)
    client = stack.client()
    body = {"source": _source(stack, long_source), "start": 0, "end": 40, "preset": "mp4"}
    clip_id = client.post("/v1/clips", json=body).json()["id"]
    assert eventually(lambda: _cutting(stack, clip_id), 60), stack.logs()
    worker = stack.workers[0]
    horse = stack.horse_of(worker)
    assert horse is not None
    first_start = _record(stack, clip_id)["started_at"]

    killed = time.monotonic()
    os.kill(horse, signal.SIGKILL)
    requeued = stack.wait_for(client, clip_id, ("queued", "failed"), 10)
    requeued_s = _since(killed)
    assert requeued["status"] == "queued", requeued
    assert requeued["error"]["code"] == "worker_lost" and requeued["error"]["retrying"]
    assert "signal 9" in requeued["error"]["message"]
    # The killed attempt left nothing: its FFmpeg died with it, its folder went at once.
    assert eventually(lambda: not ffmpeg_pids(stack.work_dir), 5), ffmpeg_pids(stack.work_dir)
    assert eventually(lambda: not temp_entries(stack.work_dir), 5), temp_entries(stack.work_dir)
    assert not alive(horse) and alive(worker.pid)

    again = eventually(lambda: _restarted(stack, clip_id, first_start), RECOVERY_BOUND_SECONDS)
    running_s = _since(killed)
    assert again, stack.logs()
    figures = _settle_and_measure(stack, client, clip_id)
    fault_figures.record(
        "work-horse SIGKILL mid-FFmpeg",
        requeued_s=requeued_s, running_again_s=running_s, succeeded_s=_since(killed), **figures
    )


def test_whole_worker_sigkilled_mid_ffmpeg_new_worker_recovers(
    fault_stack: StackFactory, long_source: Path, fault_figures: FaultFigures
) -> None:
    stack = fault_stack(ffmpeg_threads=1)
    client = stack.client()
    body = {"source": _source(stack, long_source), "start": 0, "end": 40, "preset": "mp4"}
    clip_id = client.post("/v1/clips", json=body).json()["id"]
    assert eventually(lambda: _cutting(stack, clip_id), 60), stack.logs()
    old = stack.workers[0]
    horse = stack.horse_of(old)
    ffmpeg = ffmpeg_pids(stack.work_dir)
    assert horse is not None and ffmpeg
    first_start = _record(stack, clip_id)["started_at"]
    lock = stack.redis.get("rq:scheduler-lock:default")
    assert lock is not None  # the old worker's scheduler holds it

    killed = time.monotonic()
    stack.kill_worker_group(old)
    stack.start_worker()
    # The horse and FFmpeg die with the worker (PR_SET_PDEATHSIG): no orphan keeps cutting.
    assert eventually(lambda: not alive(horse) and not ffmpeg_pids(stack.work_dir), 5)
    # The new worker removes the dead job's folder as it starts: its lock died with it.
    assert eventually(lambda: not temp_entries(stack.work_dir), 10), temp_entries(stack.work_dir)
    temp_cleared_s = _since(killed)

    def scheduler_back() -> bool:
        holder = stack.redis.get("rq:scheduler-lock:default")
        return holder is not None and holder != lock

    assert eventually(scheduler_back, 60)
    scheduler_s = _since(killed)
    again = eventually(lambda: _restarted(stack, clip_id, first_start), RECOVERY_BOUND_SECONDS)
    running_s = _since(killed)
    assert again, stack.logs()
    assert running_s <= RECOVERY_BOUND_SECONDS
    error = _record(stack, clip_id)["error"]
    assert error.get("code") == "worker_lost", error
    figures = _settle_and_measure(stack, client, clip_id)
    fault_figures.record(
        "whole worker SIGKILL mid-FFmpeg, new worker",
        temp_cleared_s=temp_cleared_s, scheduler_back_s=scheduler_s, running_again_s=running_s,
        succeeded_s=_since(killed), **figures,
    )  # fmt: skip
