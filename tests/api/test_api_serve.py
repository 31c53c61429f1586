"""`clipper api --workers N`: N processes, each on its own SO_REUSEPORT socket (api/serve.py).
Real processes, real Redis, local storage."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api.serve import reuse_port_supported
from tests.fixtures.app import api_keys_setting, settings_env
from tests.fixtures.services import free_port, local_settings

pytestmark = pytest.mark.skipif(not reuse_port_supported(), reason="needs SO_REUSEPORT")


def _group(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


def _connections_held(pid: int, port: int, state: str = "01") -> int:
    """Sockets of `pid` on local `port` in TCP `state` (01 established, 0A listening)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
            inodes.add(fields[9])
    try:
        links = [os.readlink(f) for f in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:
        return 0
    return sum(link[8:-1] in inodes for link in links if link.startswith("socket:["))


def test_two_processes_share_the_connections_and_stop_together(
    redis_url: str, tmp_path: Path
) -> None:
    proc, port = _start_two(tmp_path, redis_url)
    try:
        children = [pid for pid in _group(proc.pid) if _is_server(pid)]
        assert len(children) == 2
        socks = []
        for _ in range(40):
            socks.append(socket.create_connection(("127.0.0.1", port)))
            time.sleep(0.005)
        time.sleep(0.5)  # let both processes accept
        held = [_connections_held(pid, port) for pid in children]
        for sock in socks:
            sock.close()
        # Kernel hashing: each gets some (P(all 40 on one of 2) = 2^-39), not one almost all.
        assert sum(held) == 40, held
        assert min(held) >= 5, held

        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
        deadline = time.monotonic() + 10
        while _group(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _group(proc.pid) == []  # no API process left behind
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _is_server(pid: int) -> bool:
    """An API process (multiprocessing's resource tracker is in the group too)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"spawn_main" in cmdline


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _start_two(tmp_path: Path, redis_url: str) -> tuple[subprocess.Popen[bytes], int]:
    settings = local_settings(
        tmp_path / "storage", redis_url=redis_url, api_keys=api_keys_setting()
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPPER_")}
    env |= settings_env(settings)
    port = free_port()
    argv = [sys.executable, "-m", "clipper.cli", "api", "--port", str(port), "--workers", "2"]
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen(
        argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while not _both_listening(proc.pid, port) or not _healthy(port):
        assert proc.poll() is None, (tmp_path / "api.log").read_text()
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.2)
    return proc, port


def _both_listening(pgid: int, port: int) -> bool:
    """Two API processes, each with its own listening socket bound (a busy machine may start
    the second one well after the first answers)."""
    servers = [pid for pid in _group(pgid) if _is_server(pid)]
    return len(servers) == 2 and all(_connections_held(pid, port, "0A") for pid in servers)


def test_processes_die_with_a_sigkilled_supervisor(redis_url: str, tmp_path: Path) -> None:
    proc, port = _start_two(tmp_path, redis_url)
    children = [pid for pid in _group(proc.pid) if _is_server(pid)]
    try:
        os.kill(proc.pid, signal.SIGKILL)  # the supervisor only, as an OOM killer would
        proc.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in children), "an API process outlived the supervisor"
        assert not _healthy(port)
    finally:
        for pid in _group(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_a_process_that_dies_is_replaced(redis_url: str, tmp_path: Path) -> None:
    proc, port = _start_two(tmp_path, redis_url)
    try:
        children = [pid for pid in _group(proc.pid) if _is_server(pid)]
        os.kill(children[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            now = [pid for pid in _group(proc.pid) if _is_server(pid)]
            if len(now) == 2 and children[0] not in now and _healthy(port):
                break
            assert time.monotonic() < deadline, f"not replaced: {now}"
            time.sleep(0.2)
        assert children[1] in now  # the other one kept serving
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_process_that_cannot_start_stops_the_supervisor(tmp_path: Path) -> None:
    """A broken deployment exits 1 after a few quick failed starts, never restarts forever."""
    code = (
        "import sys, api.serve as s; s.MAX_FAILED_STARTS = 3; "
        f"sys.exit(s.serve('127.0.0.1', {free_port()}, 2, app='tests.no_such_module:app'))"
    )
    root = Path(__file__).resolve().parents[2]
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "keep dying at start" in done.stderr + done.stdout
    assert time.monotonic() - started < 60


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"
