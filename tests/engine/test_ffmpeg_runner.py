"""Argv building (safety flags, file: paths) and the process runner (timeouts, cancel, progress)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from clipper.engine.context import EngineConfig, RunContext
from clipper.engine.ffmpeg import inputs
from clipper.engine.ffmpeg import runner as ffmpeg
from clipper.errors import Canceled, EngineError, Timeout, UnsafeInput, WorkDiskFull

# An FFmpeg that runs until stopped: an endless generated source into the null muxer.
ENDLESS = [
    "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1",
    "-re", "-f", "lavfi", "-i", "testsrc2=size=64x36:rate=25", "-f", "null", "-",
]  # fmt: skip


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_local_paths_become_file_urls(tmp_path: Path) -> None:
    url = inputs.media_url(tmp_path / "-y.mp4")
    assert url == f"file:{tmp_path}/-y.mp4"
    assert inputs.media_url("https://store.example/a.mp4?X-Amz-Signature=1").startswith("https:")
    for hostile in ("concat:a.mp4|b.mp4", "pipe:0", "ftp://x/y", "data:,abc", "file:/etc/passwd"):
        with pytest.raises(UnsafeInput):
            inputs.media_url(hostile)


def test_input_whitelists(tmp_path: Path) -> None:
    local = inputs.input_options(tmp_path / "a.mp4")
    assert local["protocol_whitelist"] == "file"
    assert "hls" not in local["format_whitelist"] and "concat" not in local["format_whitelist"]
    remote = inputs.input_options("https://store.example/a.mp4")
    assert remote["protocol_whitelist"] == "http,https,tcp,tls,crypto"
    assert remote["reconnect"] == 1 and remote["reconnect_on_network_error"] == 1
    assert remote["rw_timeout"] > 0 and remote["max_redirects"] == 0


def test_compiled_argv_keeps_hostile_names_out_of_option_slots(tmp_path: Path) -> None:
    src, out = tmp_path / "-y.mp4", tmp_path / "-i.mp4"
    node = inputs.source_input(src, ss="1.0").output(inputs.output_url(out), c="copy")
    argv = inputs.compile_argv(node)
    assert "-nostdin" in argv and argv[argv.index("-progress") + 1] == "pipe:1"
    assert argv[argv.index("-i") + 1] == f"file:{src}"
    assert f"file:{out}" in argv
    assert not any(a in ("-y.mp4", "-i.mp4") for a in argv)
    i = argv.index("-i")
    assert argv[argv.index("-protocol_whitelist") + 1] == "file"
    assert argv.index("-protocol_whitelist") < i and argv.index("-format_whitelist") < i


def test_a_file_named_like_an_option_is_read_and_written(tmp_path: Path) -> None:
    src, out = tmp_path / "-y.mp4", tmp_path / "-t.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x36:rate=25:d=1",
         "-c:v", "libx264", f"file:{src}"],
        check=True,
    )  # fmt: skip
    node = inputs.source_input(src).output(inputs.output_url(out), c="copy", f="mp4")
    ffmpeg.run(inputs.compile_argv(node), RunContext(timeout_seconds=30))
    assert out.stat().st_size > 0
    assert not (Path.cwd() / "-t.mp4").exists()


def test_progress_lines_are_parsed() -> None:
    assert ffmpeg.parse_progress_line("out_time_us=5000000\n", 10.0) == 0.5
    assert ffmpeg.parse_progress_line("out_time_ms=20000000", 10.0) == 1.0  # capped
    assert ffmpeg.parse_progress_line("out_time_us=N/A", 10.0) is None
    assert ffmpeg.parse_progress_line("out_time_us=-33000", 10.0) is None
    assert ffmpeg.parse_progress_line("frame=12", 10.0) is None
    assert ffmpeg.parse_progress_line("out_time_us=1000", 0.0) is None


def test_progress_callback_fires_during_a_run() -> None:
    seen: list[tuple[str, float]] = []
    argv = [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-nostats", "-progress", "pipe:1",
        "-f", "lavfi", "-i", "testsrc2=size=64x36:rate=25:d=2", "-f", "null", "-",
    ]  # fmt: skip
    ctx = RunContext(progress=lambda p, f: seen.append((p, f)))
    ffmpeg.run(argv, ctx, expected_seconds=2.0, phase="x")
    assert seen and all(p == "x" and 0.0 <= f <= 1.0 for p, f in seen)
    assert seen[-1][1] > 0.9


def test_failure_keeps_the_stderr_tail() -> None:
    with pytest.raises(EngineError) as err:
        ffmpeg.run(["ffmpeg", "-nostdin", "-i", "file:/nonexistent/clip.mp4", "-f", "null", "-"])
    assert "No such file or directory" in err.value.message


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = f"sleep 60 & echo $! > {pidfile}; wait"
    started = time.monotonic()
    with pytest.raises(Timeout):
        ffmpeg.run(["sh", "-c", script], RunContext(timeout_seconds=0.5))
    assert time.monotonic() - started < 5
    grandchild = int(pidfile.read_text())
    assert _wait_gone(grandchild), "the shell's child survived the timeout"


def test_cancel_kills_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    cancel = threading.Event()
    pids: list[int] = []
    real_popen = subprocess.Popen

    def spying_popen(*args: Any, **kwargs: Any) -> Any:
        proc = real_popen(*args, **kwargs)
        pids.append(proc.pid)
        return proc

    monkeypatch.setattr(subprocess, "Popen", spying_popen)
    started = time.monotonic()
    with pytest.raises(Canceled):
        # The first progress block arrives once FFmpeg really runs; cancel then.
        ctx = RunContext(cancel=cancel, progress=lambda p, f: cancel.set())
        ffmpeg.run(ENDLESS, ctx, expected_seconds=9)
    assert time.monotonic() - started < 5
    assert pids and _wait_gone(pids[0])


def test_ffmpeg_dies_with_a_sigkilled_parent(tmp_path: Path) -> None:
    pidfile = tmp_path / "ffmpeg.pid"
    parent_code = (
        "import sys; from clipper.engine.ffmpeg import runner as ffmpeg; "
        "from clipper.engine.context import RunContext; "
        f"ffmpeg.run(['sh', '-c', 'echo $$ > {pidfile}; exec sleep 60'], "
        "RunContext(timeout_seconds=60))"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], cwd=Path(__file__).resolve().parents[2]
    )
    try:
        deadline = time.monotonic() + 10
        while not pidfile.exists() or not pidfile.read_text().strip():
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.05)
        child = int(pidfile.read_text())
        assert _alive(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert _wait_gone(child), "the child outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_process_that_stops_reporting_progress_is_killed() -> None:
    # Prints one progress line, then hangs: with -progress on its command line, a stall.
    argv = ["sh", "-c", "echo out_time_us=1000; exec sleep 60", "-progress"]
    ctx = RunContext(EngineConfig(stall_seconds=0.5))
    started = time.monotonic()
    with pytest.raises(Timeout) as err:
        ffmpeg.run(argv, ctx, expected_seconds=10)
    assert 0.5 <= time.monotonic() - started < 5
    assert err.value.message == "FFmpeg reported no progress for 0.5 s and was killed"
    assert err.value.retryable


def test_the_stall_watchdog_leaves_silent_processes_alone() -> None:
    # No -progress (ffprobe, captured output): only the wall-clock timeout applies.
    ctx = RunContext(EngineConfig(stall_seconds=0.2))
    result = ffmpeg.run(["sh", "-c", "sleep 0.6; echo done"], ctx, capture_stdout=True)
    assert result.stdout == "done\n"


def test_error_messages_name_the_problem_not_internal_addresses() -> None:
    url = "http://127.0.0.1:43317/src-0123456789ab/hostile/random.mp4?X-Amz-Signature=abcdef"
    script = f"echo '{url}: Invalid data found when processing input' >&2; exit 1"
    with pytest.raises(EngineError) as err:
        ffmpeg.run(["sh", "-c", script])
    assert err.value.message == "Invalid data found when processing input"
    assert "127.0.0.1:43317/src-0123456789ab" in err.value.detail  # for operators
    assert "abcdef" not in err.value.detail and "abcdef" not in str(err.value)


def test_a_full_disk_is_a_transient_failure() -> None:
    script = "echo 'av_interleaved_write_frame(): No space left on device' >&2; exit 1"
    with pytest.raises(WorkDiskFull) as err:
        ffmpeg.run(["sh", "-c", script])
    assert err.value.retryable and err.value.code == "disk_full"
