"""End to end through the command line, SMPTE requests, and a clip that fails for good."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.app import API_KEYS, ServiceStack, settings_env, upload_source
from tests.framecheck import expected_range, frame_psnr, frame_timestamps
from workers.queues import fetch_job

pytestmark = pytest.mark.slow


def _cli(stack: ServiceStack, *args: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPPER_")}
    env |= settings_env(stack.settings)
    return subprocess.run(
        [sys.executable, "-m", "clipper.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_upload_clip_wait_and_download(
    local_clip_stack: ServiceStack, media_h264_mp4: Any, tmp_path: Path
) -> None:
    stack = local_clip_stack
    key = f"cli/{uuid.uuid4().hex[:8]}.mp4"
    added = _cli(stack, "sources", "add", str(media_h264_mp4.path), "--key", key)
    assert added.returncode == 0, added.stderr
    listed = _cli(stack, "sources", "list", "--prefix", "cli/")
    assert key in listed.stdout
    out = tmp_path / "out.mp4"
    clipped = _cli(
        stack,
        "clip", key, "--start", "0.5", "--end", "2", "--wait", "-o", str(out),
        "--api-url", stack.api_url, "--api-key", API_KEYS["bob"],
    )  # fmt: skip
    assert clipped.returncode == 0, clipped.stderr + stack.logs()
    assert '"status": "succeeded"' in clipped.stdout
    first, stop = expected_range(frame_timestamps(media_h264_mp4.path), 0.5, 2)
    assert len(frame_timestamps(out)) == stop - first
    bad = _cli(stack, "clip", key, "--start", "3", "--end", "1", "--api-url", stack.api_url,
               "--api-key", API_KEYS["bob"])  # fmt: skip
    assert bad.returncode != 0
    assert "422" in bad.stderr and "end" in bad.stderr


def test_smpte_clip_of_embedded_timecode(
    local_clip_stack: ServiceStack, media_h264_mov: Any, tmp_path: Path
) -> None:
    import httpx

    stack = local_clip_stack
    key = f"smpte/{uuid.uuid4().hex[:8]}.mov"
    upload_source(stack.settings, key, media_h264_mov.path)
    client = stack.client("alice")
    # 25 fps, source timecode 10:00:00:00: frames 30 (in, included) to 60 (out, excluded).
    body = {"source": key, "start": "10:00:01:05", "end": "10:00:02:10"}
    clip = client.post("/v1/clips", json=body)
    assert clip.status_code == 202, clip.text
    done = stack.wait_for(client, clip.json()["id"])
    assert done["status"] == "succeeded", stack.logs()
    out = tmp_path / "clip.mov"
    out.write_bytes(httpx.get(done["result"]["download_url"], timeout=30).content)
    assert len(frame_timestamps(out)) == 30
    assert frame_psnr(out, 0, media_h264_mov.path, 30) > 35.0
    assert frame_psnr(out, 29, media_h264_mov.path, 59) > 35.0
    segment = done["result"]["accuracy"]["segments"][0]
    assert segment["delivered_first"]["timecode"] == "10:00:01:05"


def test_broken_media_fails_once_without_retry(
    local_clip_stack: ServiceStack, media_truncated_faststart_mp4: Any
) -> None:
    stack = local_clip_stack
    key = f"broken/{uuid.uuid4().hex[:8]}.mp4"
    upload_source(stack.settings, key, media_truncated_faststart_mp4.path)
    client = stack.client("alice")
    # The index promises 5 s; the media bytes stop about 60 % in.
    response = client.post("/v1/clips", json={"source": key, "start": 3.5, "end": 4.8})
    assert response.status_code == 202, response.text
    clip_id = response.json()["id"]
    failed = stack.wait_for(client, clip_id, timeout_seconds=60)
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] in ("invalid_media", "verification_failed", "engine_error")
    time.sleep(1.0)
    job = fetch_job(stack.redis, clip_id)
    assert job is not None
    assert job.get_status(refresh=True) == "failed"
    assert not job.retries_left  # not retried: bad media stays bad
    assert client.get(f"/v1/clips/{clip_id}").json()["status"] == "failed"
