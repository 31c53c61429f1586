"""Cancel a running clip: its FFmpeg dies, no temp file stays, no object is stored."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.fixtures.app import ServiceStack, upload_source
from workers import records
from workers.queues import QUEUE_NAMES, get_queue

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def long_source(local_clip_stack: ServiceStack, tmp_path_factory: pytest.TempPathFactory) -> str:
    """60 s of 640x360 H.264: a transcode of all of it runs for seconds, not milliseconds."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
         "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440",
         "-t", "60", "-c:v", "libx264", "-preset", "ultrafast", "-g", "60",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
        check=True,
    )  # fmt: skip
    key = f"long/{uuid.uuid4().hex[:8]}.mp4"
    upload_source(local_clip_stack.settings, key, path)
    return key


def _ffmpeg_pids(marker: Path) -> list[int]:
    """FFmpeg/ffprobe processes whose command line mentions `marker` (our work dir)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            argv
            and argv[0].endswith((b"ffmpeg", b"ffprobe"))
            and str(marker).encode() in b" ".join(argv)
        ):
            pids.append(int(proc.name))
    return pids


def _eventually(check: object, timeout_seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_cancel_running_clip(local_clip_stack: ServiceStack, long_source: str) -> None:
    stack = local_clip_stack
    client = stack.client("alice")
    body = {"source": long_source, "start": 0, "end": 59, "preset": "mp4", "priority": "bulk"}
    clip = client.post("/v1/clips", json=body)
    assert clip.status_code == 202, clip.text
    clip_id = clip.json()["id"]
    running = stack.wait_for(client, clip_id, ("running", "succeeded", "failed"), 60)
    assert running["status"] == "running"
    assert _eventually(lambda: _ffmpeg_pids(stack.work_dir), 20), "FFmpeg never started"
    # Progress moves while FFmpeg runs: phase cutting, a percentage, an estimate.
    progress: dict[str, object] = {}

    def cutting() -> bool:
        progress.update(client.get(f"/v1/clips/{clip_id}").json()["progress"])
        return progress["phase"] == "cutting" and 5.0 < float(str(progress["percent"])) < 85.0

    assert _eventually(cutting, 20), progress
    assert progress["eta_seconds"] is not None

    canceled = client.delete(f"/v1/clips/{clip_id}")
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"

    assert _eventually(lambda: not _ffmpeg_pids(stack.work_dir)), _ffmpeg_pids(stack.work_dir)
    assert _eventually(lambda: not any(stack.work_dir.rglob("*"))), list(stack.work_dir.rglob("*"))
    record = records.load(stack.redis, clip_id)
    assert record is not None
    assert record.status == "canceled"
    assert stack.storage.stat_clip(record.object_key) is None
    # Still canceled a moment later: the job did not overwrite it or get retried.
    time.sleep(1.0)
    assert client.get(f"/v1/clips/{clip_id}").json()["status"] == "canceled"
    assert all(len(get_queue(name, stack.redis)) == 0 for name in QUEUE_NAMES)
    assert stack.worker_alive()

    # The worker is free again: a small clip of the same source still succeeds.
    small = client.post("/v1/clips", json={"source": long_source, "start": 1, "end": 2})
    assert stack.wait_for(client, small.json()["id"])["status"] == "succeeded", stack.logs()
