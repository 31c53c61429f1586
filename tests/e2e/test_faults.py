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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from clipper.storage import open_storage
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


def test_redis_killed_and_restarted_under_submit_load(
    fault_stack: StackFactory, media_h264_mp4: Any, fault_figures: FaultFigures
) -> None:
    import threading

    stack = fault_stack()
    key = _source(stack, media_h264_mp4.path)
    answers: list[tuple[float, int, dict[str, str], Any]] = []
    stop = threading.Event()

    def submit_loop(offset: int) -> None:
        client = stack.client()
        n = 0
        while not stop.is_set():
            start = round(0.5 + (offset + 4 * n) * 0.01, 3)
            body = {"source": key, "start": start, "end": start + 1.0, "accuracy": "fast"}
            sent = time.monotonic()
            try:
                response = client.post("/v1/clips", json=body)
                answers.append((sent, response.status_code, dict(response.headers),
                                response.json()))  # fmt: skip
            except Exception as exc:  # a crashed or hung API is a failure too
                answers.append((sent, -1, {}, repr(exc)))
            n += 1
            time.sleep(0.2)

    threads = [threading.Thread(target=submit_loop, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(3.0)
    killed = time.monotonic()
    stack.redis_server.kill()
    time.sleep(4.0)
    stack.redis_server.start()  # replays the AOF; returns once PING answers
    up = time.monotonic()
    time.sleep(4.0)
    stop.set()
    for thread in threads:
        thread.join()

    statuses = [code for _, code, _, _ in answers]
    assert all(code in (200, 202, 503) for code in statuses), [
        a for a in answers if a[1] not in (200, 202, 503)
    ]
    unavailable = [a for a in answers if a[1] == 503]
    assert unavailable, "no submit met the outage"
    for sent, _, headers, body in unavailable:
        assert headers.get("retry-after"), headers
        assert body["code"] == "unavailable"
        # Only while Redis was down (a request sent just before the restart may still fail).
        assert killed - 0.5 <= sent <= up + 1.0, (sent - killed, up - killed)
    accepted = [body["id"] for _, code, _, body in answers if code in (200, 202)]
    assert len(accepted) > len(unavailable) / 2

    def all_done() -> bool:
        from workers import records

        found = [records.load(stack.redis, clip_id) for clip_id in accepted]
        return all(r is not None and r.status == "succeeded" for r in found)

    assert eventually(all_done, 150, step=1.0), stack.logs()
    finished_s = _since(up)
    assert all(proc.poll() is None for proc in stack.workers), stack.logs()

    def scheduler_beating() -> bool:
        holder = stack.redis.get("rq:scheduler-lock:default")
        if holder is None:
            return False
        beat = stack.redis.hget(f"rq:scheduler:{holder.decode()}", "last_heartbeat")
        if beat is None:
            return False
        from rq.utils import utcparse

        return (rq_now() - utcparse(beat.decode())).total_seconds() < 3

    from rq.utils import now as rq_now

    assert eventually(scheduler_beating, 30), stack.logs()
    fault_figures.record(
        "Redis SIGKILL + restart (AOF) under submit load",
        outage_s=up - killed, submits=len(answers), accepted=len(accepted),
        answered_503=len(unavailable), answered_5xx_other=0,
        all_finished_after_restart_s=finished_s, scheduler_back=True,
        objects=len(stack.clip_objects()), open_uploads=stack.open_uploads(),
        temp_entries=len(temp_entries(stack.work_dir)), processes=stack.processes(),
    )  # fmt: skip


def test_s3_stopped_during_the_upload(
    fault_stack: StackFactory, long_source: Path, fault_figures: FaultFigures
) -> None:
    # 5 MiB parts and a throttled link: a 12 MB clip goes up in parts for a few seconds.
    stack = fault_stack(s3_part_size_bytes=5 * 1024 * 1024)
    direct = stack.settings.model_copy(update={"s3_endpoint": stack.settings.s3_public_endpoint})
    key = f"faults/{uuid.uuid4().hex[:8]}.mp4"
    upload_source(direct, key, long_source)
    stack.s3_proxy.upload_bytes_per_second = 3 * 1024 * 1024
    client = stack.client()
    body = {"source": key, "start": 0, "end": 50, "accuracy": "fast"}
    clip_id = client.post("/v1/clips", json=body).json()["id"]

    def uploading() -> bool:
        record = _record(stack, clip_id)
        return record["progress"].get("phase") == "uploading" and (
            stack.s3_proxy.bytes_from_client > 6 * 1024 * 1024  # past the first part
        )

    assert eventually(uploading, 60, step=0.05), stack.logs()
    stack.s3_proxy.stop()
    stopped = time.monotonic()
    seen: list[dict[str, Any]] = []
    while _since(stopped) < 3.0:
        seen.append(client.get(f"/v1/clips/{clip_id}").json())
        assert client.get(f"/v1/clips/{clip_id}/download").status_code == 409
        time.sleep(0.2)
    dangling = stack.open_uploads(direct)
    stack.s3_proxy.upload_bytes_per_second = None
    stack.s3_proxy.start()
    back = time.monotonic()
    assert all(s["status"] != "succeeded" and s["result"] is None for s in seen)
    retrying = [s for s in seen if s["status"] == "queued"]
    assert retrying, seen[-1]
    error = retrying[-1]["error"]
    assert error["retrying"] is True and error["message"] == "storage unavailable", error
    assert open_storage(direct).stat_clip(_object_key(stack, clip_id)) is None

    done = stack.wait_for(client, clip_id, ("succeeded", "failed"), 90)
    assert done["status"] == "succeeded", f"{done}\n{stack.logs()}"
    info = open_storage(direct).stat_clip(_object_key(stack, clip_id))
    assert info is not None and info.size_bytes == done["result"]["size_bytes"]
    assert "-" in info.etag  # went up in parts
    figures = _settle_and_measure(stack, client, clip_id)
    fault_figures.record(
        "S3 stopped mid-upload (multipart)",
        outage_s=back - stopped, open_uploads_during_outage=dangling,
        succeeded_after_restore_s=_since(back), object_bytes=info.size_bytes, **figures,
    )  # fmt: skip


def _object_key(stack: FaultStack, clip_id: str) -> str:
    from workers import records

    record = records.load(stack.redis, clip_id)
    assert record is not None
    return record.object_key


def _stalling_ffmpeg(folder: Path) -> Path:
    """An `ffmpeg` whose first cutting run (one with -progress) freezes after a second (SIGSTOP:
    alive, silent), as FFmpeg does on a read that never returns; later runs are normal."""
    marker = folder / "stalled-once"
    script = folder / "ffmpeg"
    script.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" -progress "*)\n'
        f'  if [ ! -e "{marker}" ]; then\n'
        f'    : > "{marker}"\n'
        '    ffmpeg "$@" & pid=$!\n'
        f'    sleep 1; kill -STOP $pid; : > "{marker}.stopped"; wait $pid; exit $?\n'
        "  fi;;\n"
        "esac\n"
        'exec ffmpeg "$@"\n'
    )
    script.chmod(0o755)
    return script


def test_a_stalled_ffmpeg_is_killed_and_retried(
    fault_stack: StackFactory, long_source: Path, tmp_path: Path, fault_figures: FaultFigures
) -> None:
    wrapper = _stalling_ffmpeg(tmp_path)
    stack = fault_stack(ffmpeg_path=str(wrapper), ffmpeg_stall_seconds=2.0, ffmpeg_threads=1)
    client = stack.client()
    body = {"source": _source(stack, long_source), "start": 0, "end": 40, "preset": "mp4"}
    clip_id = client.post("/v1/clips", json=body).json()["id"]
    assert eventually(lambda: (tmp_path / "stalled-once.stopped").exists(), 60, 0.02), stack.logs()
    stalled = time.monotonic()

    requeued = stack.wait_for(client, clip_id, ("queued", "failed", "succeeded"), 30)
    killed_s = _since(stalled)
    assert requeued["status"] == "queued", requeued
    error = requeued["error"]
    assert error["code"] == "timeout" and error["retrying"] is True, error
    assert error["message"] == "FFmpeg reported no progress for 2 s and was killed"
    # Its last progress line came up to half a second before it froze.
    assert 1.0 <= killed_s < 5.0, killed_s
    # The frozen FFmpeg is gone (SIGKILL reaches a stopped process), and its folder with it.
    assert eventually(lambda: not ffmpeg_pids(stack.work_dir), 5), ffmpeg_pids(stack.work_dir)
    assert eventually(lambda: not temp_entries(stack.work_dir), 5), temp_entries(stack.work_dir)
    assert stack.clip_objects() == []
    figures = _settle_and_measure(stack, client, clip_id)
    fault_figures.record(
        "FFmpeg stalls (SIGSTOP), watchdog 2 s",
        killed_after_stall_s=killed_s, succeeded_after_stall_s=_since(stalled), **figures
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs (unmounted after the test): a work disk that fills up for real."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount_point)]
    subprocess.run(mount, check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_work_disk_is_a_transient_failure(
    fault_stack: StackFactory, long_source: Path, small_disk: Path, fault_figures: FaultFigures
) -> None:
    stack = fault_stack(work_dir=small_disk, ffmpeg_threads=1)
    filler = small_disk / "filler"
    free = os.statvfs(small_disk)
    filler.write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 256 * 1024))  # 256 KiB left
    client = stack.client()
    body = {"source": _source(stack, long_source), "start": 0, "end": 20, "preset": "mp4"}
    clip_id = client.post("/v1/clips", json=body).json()["id"]

    def first_attempt_over() -> dict[str, Any] | None:
        resource: dict[str, Any] = client.get(f"/v1/clips/{clip_id}").json()
        return resource if resource["error"] or resource["status"] == "succeeded" else None

    requeued = eventually(first_attempt_over, 60)
    assert requeued is not None, stack.logs()
    failed_at = time.monotonic()
    assert requeued["status"] == "queued", requeued
    error = requeued["error"]
    assert error["code"] == "disk_full" and error["retrying"] is True, error
    assert "<" not in error["message"] and "/" not in error["message"], error
    # Nothing partial: the attempt's folder is gone, nothing reached storage.
    assert eventually(lambda: temp_entries(small_disk) == ["filler"], 5), temp_entries(small_disk)
    assert stack.clip_objects() == []
    filler.unlink()  # the operator frees space; the retry (5 s back-off) goes through
    figures = _settle_and_measure(stack, client, clip_id)
    fault_figures.record(
        "work disk full (48 MiB tmpfs, 256 KiB free)",
        error=error["code"], succeeded_after_space_freed_s=_since(failed_at), **figures
    )


def _failing_once_ffmpeg(folder: Path) -> Path:
    """An `ffmpeg` whose first cutting run fails like a full disk (a transient error)."""
    marker = folder / "failed-once"
    script = folder / "ffmpeg"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ ! -e "{marker}" ] && case " $* " in *" -progress "*) true;; *) false;; esac; then\n'
        f'  : > "{marker}"; echo "av_interleaved_write_frame(): No space left on device" >&2\n'
        "  exit 1\n"
        "fi\n"
        'exec ffmpeg "$@"\n'
    )
    script.chmod(0o755)
    return script


def test_a_retry_runs_when_the_worker_that_scheduled_it_is_gone(
    fault_stack: StackFactory, media_h264_mp4: Any, tmp_path: Path, fault_figures: FaultFigures
) -> None:
    stack = fault_stack(ffmpeg_path=str(_failing_once_ffmpeg(tmp_path)))
    client = stack.client()
    body = {"source": _source(stack, media_h264_mp4.path), "start": 1, "end": 3}
    clip_id = client.post("/v1/clips", json=body).json()["id"]
    due = eventually(lambda: stack.redis.zscore("rq:scheduled:default", clip_id), 30, 0.02)
    assert due, stack.logs()  # the first attempt failed; its worker scheduled the retry
    first_start = _record(stack, clip_id)["started_at"]
    stack.kill_worker_group(stack.workers[0])  # with its scheduler, which held the lock
    stack.start_worker()
    assert eventually(lambda: _restarted(stack, clip_id, first_start), 90 + 10), stack.logs()
    late_s = time.time() - due
    assert late_s <= 90, late_s
    figures = _settle_and_measure(stack, client, clip_id)
    fault_figures.record(
        "retry due after its scheduling worker was SIGKILLed",
        ran_after_due_s=late_s, **figures,
    )
