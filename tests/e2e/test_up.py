"""`clipper up` for real: private Redis, API, worker, sample; the printed curl works; Ctrl-C
leaves nothing behind."""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from clipper.cli.private_redis import PrivateRedis, load_password
from clipper.cli.supervise import Supervisor, free_port, port_is_free, redis_server_argv
from tests.fixtures.services import S3Server

READY = "clipper-up ready "
STARTUP_SECONDS = 180.0


@dataclass
class Up:
    """A running `clipper up` and everything it printed so far."""

    process: subprocess.Popen[str]
    state_dir: Path
    lines: list[str] = field(default_factory=list)
    fresh: queue.Queue[str] = field(default_factory=queue.Queue)

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self.fresh.put(line.rstrip("\n"))

    def wait_for(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.fresh.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None and self.fresh.empty():
                    break
                continue
            if line.strip().startswith(prefix):
                return line.strip()
        pytest.fail(f"no line starting {prefix!r}; output:\n" + "\n".join(self.lines[-60:]))

    def output(self) -> str:
        return "\n".join(self.lines)


def _start(state_dir: Path, *args: str, env_extra: dict[str, str] | None = None) -> Up:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPPER_")}
    env |= {"CLIPPER_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"} | (env_extra or {})
    argv = [sys.executable, "-m", "clipper.cli", "up", "--port", str(free_port()), *args]
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    up = Up(process=process, state_dir=state_dir)
    threading.Thread(target=up.read, daemon=True).start()
    return up


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Up]:
    up = _start(tmp_path / "state", "--sample-seconds", "6", "--sample-size", "320x180")
    yield up
    if up.process.poll() is None:  # a failed test: do not leave the service running
        up.process.send_signal(signal.SIGINT)
        try:
            up.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.process.kill()
    for pid in _processes_of(up):
        os.kill(pid, signal.SIGKILL)


def _processes_of(up: Up) -> dict[int, str]:
    """Live processes that belong to this run: descendants of `up`, or naming its state dir."""
    marker = str(up.state_dir).encode()
    found: dict[int, str] = {}
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        state = stat.rsplit(")", 1)[1].split()
        if state[0] in ("Z", "X"):
            continue  # dead, only waiting for its parent to read the exit code
        pid = int(entry.name)
        parents[pid] = int(state[1])
        if pid != up.process.pid and (marker in cmdline or marker in environ):
            found[pid] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    for pid in parents:
        ancestor = parents.get(pid, 0)
        while ancestor > 1:
            if ancestor == up.process.pid:
                found.setdefault(pid, Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " "))
                break
            ancestor = parents.get(ancestor, 0)
    return found


def _wait_gone(up: Up, seen: dict[int, str], timeout: float = 15.0) -> dict[int, str]:
    """What is left of this run: `seen` processes still alive (an orphan re-parented to init
    no longer descends from `up`, and Redis overwrites its environment) plus new ones."""

    def left() -> dict[int, str]:
        alive = {pid: cmd for pid, cmd in seen.items() if _alive(pid)}
        return alive | _processes_of(up)

    deadline = time.monotonic() + timeout
    remaining = left()
    while remaining and time.monotonic() < deadline:
        time.sleep(0.2)
        remaining = left()
    return remaining


def _printed_curl(up: Up, prefix: str) -> list[str]:
    line = next(ln.strip() for ln in up.lines if ln.strip().startswith(prefix))
    return shlex.split(line)


def _ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def _run_printed_example(up: Up, ready: dict[str, Any], download_dir: Path) -> dict[str, Any]:
    """Paste the printed curl commands as a user would; check the clip; return its resource."""
    auth = {"Authorization": f"Bearer {ready['api_key']}"}
    post = subprocess.run(
        _printed_curl(up, "curl -s -X POST"), capture_output=True, text=True, timeout=30, check=True
    )
    clip: dict[str, Any] = json.loads(post.stdout)
    assert clip["status"] in ("queued", "running", "succeeded"), clip
    deadline = time.monotonic() + 120
    while clip["status"] not in ("succeeded", "failed", "canceled") and time.monotonic() < deadline:
        time.sleep(0.5)
        url = f"{ready['api_url']}/v1/clips/{clip['id']}"
        clip = httpx.get(url, headers=auth, timeout=10).json()
    assert clip["status"] == "succeeded", clip

    # The printed download command (307 to a signed link), with the id filled in.
    download = _printed_curl(up, "curl -L -OJ")
    download[-1] = download[-1].replace("<id>", clip["id"])
    download_dir.mkdir(exist_ok=True)
    subprocess.run(download, cwd=download_dir, check=True, timeout=60, capture_output=True)
    (clip_file,) = [p for p in download_dir.iterdir() if p.is_file()]
    probe = _ffprobe(clip_file)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    # 01:00:02;00 to 01:00:03;00 exclusive at 30000/1001: frames 60..89 of the sample.
    assert int(video["nb_read_frames"]) == 30
    assert video["r_frame_rate"] == "30000/1001"
    assert any(s["codec_type"] == "audio" for s in probe["streams"])
    return clip


def _assert_redis_is_private(up: Up) -> None:
    """The private Redis refuses anyone without the password; the printed redis-cli works."""
    password_file = up.state_dir / "redis.password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((up.state_dir / "redis").stat().st_mode) == 0o700
    password = password_file.read_text().strip()
    line = next(ln.strip() for ln in up.lines if ln.strip().startswith("redis-cli "))
    command = line.removeprefix("redis-cli").strip()
    port = int(shlex.split(command)[-1])
    with pytest.raises(redis.AuthenticationError):  # NOAUTH: no password, no commands
        redis.Redis(port=port, socket_timeout=5).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port, password="guessed", socket_timeout=5).ping()
    assert redis.Redis(port=port, password=password, socket_timeout=5).ping()
    # The banner's command, pasted into a shell.
    pong = subprocess.run(["sh", "-c", f"{command} ping"], capture_output=True, text=True,
                          timeout=10, check=True)  # fmt: skip
    assert pong.stdout.strip() == "PONG"
    # Neither the password nor a URL holding it is on any command line or in the output.
    for pid, cmdline in _processes_of(up).items():
        assert password not in cmdline, (pid, cmdline)
    assert password not in up.output()


@pytest.mark.slow
def test_up_serves_the_printed_curl_example_and_stops_cleanly(running: Up, tmp_path: Path) -> None:
    ready = json.loads(running.wait_for(READY, STARTUP_SECONDS)[len(READY) :])
    api = ready["api_url"]

    children = _processes_of(running)
    commands = " | ".join(children.values())
    assert "redis-server" in commands and " api " in commands and " worker" in commands, commands
    assert (running.state_dir / "redis" / "appendonlydir").is_dir()  # AOF on, in our state dir

    clip = _run_printed_example(running, ready, tmp_path / "download")
    assert clip["result"]["download_url"].startswith(f"{api}/files/")  # local storage links
    _assert_redis_is_private(running)

    seen = children | _processes_of(running)
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(timeout=60) == 0, running.output()[-3000:]
    assert _wait_gone(running, seen) == {}
    assert "Clipper stopped." in running.output()


@pytest.mark.slow
def test_up_stops_everything_when_a_child_dies(tmp_path: Path) -> None:
    stale = tmp_path / "state" / "work" / "clipper-clp_killed-abc123"
    stale.mkdir(parents=True)  # what a work-horse killed mid-cut leaves behind
    (stale / "part-000.ts").write_bytes(b"x")
    up = _start(tmp_path / "state", "--no-sample", "--workers", "2")
    try:
        up.wait_for(READY, STARTUP_SECONDS)
        assert not stale.exists()
        second = _start(tmp_path / "state", "--no-sample")  # same state dir: refused
        assert second.process.wait(timeout=30) == 1
        second.wait_for("Error: another `clipper up` is using", 5)
        seen = _processes_of(up)
        # The worker itself, not the RQ scheduler it forks (same command line).
        workers = [pid for pid, cmd in seen.items() if cmd.rstrip().endswith(" worker")]
        first, second = sorted(pid for pid in workers if _parent(pid) == up.process.pid)
        assert any("redis-server" in cmd for cmd in seen.values()), seen
        os.kill(second, signal.SIGKILL)
        assert up.process.wait(timeout=60) == 1
        assert "worker-2 exited unexpectedly" in up.output()
        assert not _alive(first)
        assert _wait_gone(up, seen) == {}
    finally:
        if up.process.poll() is None:
            up.process.kill()
        for pid in _processes_of(up):
            os.kill(pid, signal.SIGKILL)


# The supervisor on its own, with plain shell children: fast, no service needed.


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_supervisor_reports_the_child_that_died() -> None:
    sup = Supervisor(grace_seconds=2, say=lambda _m: None)
    sup.start("steady", ["sleep", "30"])
    sup.start("flaky", ["sh", "-c", "sleep 0.3; exit 3"])
    try:
        dead = sup.wait(threading.Event())
        assert dead is not None and dead.name == "flaky" and dead.process.returncode == 3
    finally:
        sup.stop_all()
    assert all(c.process.returncode is not None for c in sup.children)


def test_supervisor_kills_what_ignores_sigterm_and_its_whole_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # The child ignores SIGTERM and has a grandchild (like a worker's FFmpeg) in its group.
    script = f"trap '' TERM; sleep 60 & echo $! > {pids}; wait"
    sup = Supervisor(grace_seconds=1, say=lambda _m: None)
    child = sup.start("stubborn", ["sh", "-c", script])
    deadline = time.monotonic() + 10
    while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = int(pids.read_text())
    started = time.monotonic()
    sup.stop_all()
    assert 0.9 <= time.monotonic() - started < 10  # waited the grace period, then killed
    assert child.process.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_supervisor_stops_higher_tiers_first(tmp_path: Path) -> None:
    log = tmp_path / "order"
    sup = Supervisor(grace_seconds=5, say=lambda _m: None)
    for name, tier in (("redis", 0), ("api", 1)):
        sup.start(
            name,
            ["sh", "-c", f"trap 'echo {name} >> {log}; exit 0' TERM; sleep 60 & wait"],
            tier=tier,
        )
    time.sleep(0.3)  # let the shells install their traps
    sup.stop_all()
    assert log.read_text().split() == ["api", "redis"]


def test_children_die_with_the_supervisor(tmp_path: Path) -> None:
    # A supervisor killed with SIGKILL cannot clean up: PR_SET_PDEATHSIG must do it.
    pid_file = tmp_path / "pid"
    code = (
        "import time; from clipper.cli.supervise import Supervisor; "
        "c = Supervisor().start('s', ['sleep', '60']); "
        f"open({str(pid_file)!r}, 'w').write(str(c.pid)); "
        "time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 20
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert _alive(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_free_port_prefers_the_given_one_when_free() -> None:
    port = free_port()
    assert port_is_free("127.0.0.1", port)
    assert free_port(preferred=port) == port
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        assert not port_is_free("127.0.0.1", port)
        assert free_port(preferred=port) != port


def _run_stubborn_parent(tmp_path: Path, reap_orphans: bool) -> int:
    """A supervisor whose child ignores SIGTERM and has a grandchild in its own session (as
    an RQ work-horse leaves its worker's group); returns the grandchild's pid."""
    pid_file = tmp_path / f"escaped-{reap_orphans}"
    script = f"setsid sleep 61 & echo $! > {pid_file}; trap '' TERM; wait"
    code = (
        "import pathlib, time; from clipper.cli.supervise import Supervisor\n"
        f"sup = Supervisor(grace_seconds=0.5, say=print, reap_orphans={reap_orphans})\n"
        f"sup.start('stubborn', ['sh', '-c', {script!r}])\n"
        f"p = pathlib.Path({str(pid_file)!r})\n"
        "while not (p.exists() and p.read_text().strip()): time.sleep(0.05)\n"
        "sup.stop_all()\n"
    )
    # No pipes: the escaped grandchild would hold them open and stall run().
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        timeout=30,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return int(pid_file.read_text())


def test_supervisor_kills_orphans_that_left_the_process_group(tmp_path: Path) -> None:
    escaped = _run_stubborn_parent(tmp_path, reap_orphans=False)
    try:
        assert _alive(escaped)  # the leak the subreaper exists for
    finally:
        os.kill(escaped, signal.SIGKILL)
    escaped = _run_stubborn_parent(tmp_path, reap_orphans=True)
    deadline = time.monotonic() + 5
    while _alive(escaped) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(escaped)


def _ffmpeg_of(up: Up) -> list[int]:
    return [pid for pid, cmd in _processes_of(up).items() if cmd.startswith("ffmpeg")]


@pytest.mark.slow
def test_sigterm_mid_job_leaves_no_ffmpeg(tmp_path: Path) -> None:
    # A transcode long enough to be caught running; a 1 s grace forces the cold shutdown path
    # (RQ kills its work-horse, the horse's FFmpeg dies with it).
    up = _start(
        tmp_path / "state",
        *("--sample-seconds", "40", "--sample-size", "640x360", "--grace-seconds", "1"),
    )
    try:
        ready = json.loads(up.wait_for(READY, STARTUP_SECONDS)[len(READY) :])
        body = {"source": ready["sample_key"], "preset": "mp4", "start": 0, "end": 39}
        auth = {"Authorization": f"Bearer {ready['api_key']}"}
        answer = httpx.post(f"{ready['api_url']}/v1/clips", json=body, headers=auth, timeout=10)
        assert answer.status_code == 202, answer.text
        deadline = time.monotonic() + 60
        while not _ffmpeg_of(up) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _ffmpeg_of(up), "the transcode never started"
        seen = _processes_of(up)
        up.process.send_signal(signal.SIGTERM)
        assert up.process.wait(timeout=60) == 0
        assert "worker-1 did not stop in time" in up.output()  # the path under test was taken
        assert _wait_gone(up, seen) == {}
    finally:
        if up.process.poll() is None:
            up.process.kill()
        for pid in _processes_of(up):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_sigkill_of_up_mid_job_leaves_nothing(tmp_path: Path) -> None:
    # No clean-up code runs after SIGKILL: PR_SET_PDEATHSIG must chain up -> worker ->
    # work-horse (which RQ moves to its own process group) -> FFmpeg.
    up = _start(tmp_path / "state", "--sample-seconds", "40", "--sample-size", "640x360")
    try:
        ready = json.loads(up.wait_for(READY, STARTUP_SECONDS)[len(READY) :])
        body = {"source": ready["sample_key"], "preset": "mp4", "start": 0, "end": 39}
        auth = {"Authorization": f"Bearer {ready['api_key']}"}
        answer = httpx.post(f"{ready['api_url']}/v1/clips", json=body, headers=auth, timeout=10)
        assert answer.status_code == 202, answer.text
        deadline = time.monotonic() + 60
        while not _ffmpeg_of(up) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _ffmpeg_of(up), "the transcode never started"
        seen = _processes_of(up)
        up.process.kill()
        up.process.wait(timeout=10)
        assert _wait_gone(up, seen) == {}
    finally:
        if up.process.poll() is None:
            up.process.kill()
        for pid in _processes_of(up):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_up_uses_s3_when_s3_settings_are_given(tmp_path: Path, s3_server: S3Server) -> None:
    suffix = uuid.uuid4().hex[:8]
    s3 = {  # no CLIPPER_STORAGE: giving the S3 connection is enough
        "CLIPPER_S3_ENDPOINT": s3_server.endpoint,
        "CLIPPER_S3_ACCESS_KEY": s3_server.access_key,
        "CLIPPER_S3_SECRET_KEY": s3_server.secret_key,
        "CLIPPER_S3_REGION": s3_server.region,
        "CLIPPER_SOURCE_BUCKET": f"up-src-{suffix}",
        "CLIPPER_CLIP_BUCKET": f"up-clips-{suffix}",
    }
    up = _start(
        tmp_path / "state", "--sample-seconds", "6", "--sample-size", "320x180", env_extra=s3
    )
    try:
        ready = json.loads(up.wait_for(READY, STARTUP_SECONDS)[len(READY) :])
        clip = _run_printed_example(up, ready, tmp_path / "download")
        assert f"s3 ({s3_server.endpoint}" in up.output()
        # A presigned S3 link (SigV4), not a link served by the API.
        assert clip["result"]["download_url"].startswith(f"http://{s3_server.endpoint}/")
        assert "X-Amz-Signature=" in clip["result"]["download_url"]
        assert not (tmp_path / "state" / "storage").exists()
        seen = _processes_of(up)
        up.process.send_signal(signal.SIGINT)
        assert up.process.wait(timeout=60) == 0
        assert _wait_gone(up, seen) == {}
    finally:
        if up.process.poll() is None:
            up.process.kill()
        for pid in _processes_of(up):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_up_uses_the_given_redis_instead_of_its_own(tmp_path: Path, redis_url: str) -> None:
    up = _start(tmp_path / "state", "--no-sample", env_extra={"CLIPPER_REDIS_URL": redis_url})
    try:
        ready = json.loads(up.wait_for(READY, STARTUP_SECONDS)[len(READY) :])
        seen = _processes_of(up)
        assert not any("redis-server" in cmd for cmd in seen.values()), seen
        assert not (tmp_path / "state" / "redis").exists()
        assert f"Redis      {redis_url}" in up.output()
        ready_check = httpx.get(f"{ready['api_url']}/readyz", timeout=10)
        assert ready_check.status_code == 200, ready_check.text  # the API talks to that Redis
        up.process.send_signal(signal.SIGINT)
        assert up.process.wait(timeout=60) == 0
        assert _wait_gone(up, seen) == {}
    finally:
        if up.process.poll() is None:
            up.process.kill()
        for pid in _processes_of(up):
            os.kill(pid, signal.SIGKILL)


def test_child_settings_follow_the_state_dir_and_what_the_user_gave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clipper.cli.up_cmds import EMBEDDED_REDIS_PORT, _child_overrides
    from clipper.settings import Settings

    for name in list(os.environ):
        if name.startswith("CLIPPER_"):
            monkeypatch.delenv(name)
    state = tmp_path / "st"
    defaults = _child_overrides(Settings(state_dir=state), "0.0.0.0", 8100)
    assert defaults["local_storage_dir"] == str(state / "storage")
    assert defaults["work_dir"] == str(state / "work")
    assert defaults["public_base_url"] == "http://127.0.0.1:8100"
    password = (state / "redis.password").read_text().strip()  # made for the private Redis
    assert defaults["redis_url"].startswith(f"redis://:{password}@127.0.0.1:")
    if port_is_free("127.0.0.1", EMBEDDED_REDIS_PORT):
        assert defaults["redis_url"] == f"redis://:{password}@127.0.0.1:{EMBEDDED_REDIS_PORT}/0"
    assert "storage" not in defaults

    given = Settings(
        state_dir=state,
        redis_url="redis://elsewhere:6379/2",
        work_dir=tmp_path / "scratch",
        s3_endpoint="minio.internal:9000",
    )
    overrides = _child_overrides(given, "127.0.0.1", 8100)
    assert "redis_url" not in overrides and "work_dir" not in overrides
    assert overrides["storage"] == "s3"  # S3 connection given: S3 meant
    local = Settings(state_dir=state, storage="local", s3_endpoint="x:1")
    explicit = _child_overrides(local, "h", 1)
    assert "storage" not in explicit  # an explicit CLIPPER_STORAGE wins


# The private Redis on its own: a real redis-server started as `clipper up` starts it.


def test_the_redis_password_is_made_once_and_kept_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    password = load_password(state)
    assert len(password) >= 40
    assert stat.S_IMODE((state / "redis.password").stat().st_mode) == 0o600
    assert load_password(state) == password  # kept across runs
    (state / "redis.password").chmod(0o644)  # loosened by hand: tightened again
    assert load_password(state) == password
    assert stat.S_IMODE((state / "redis.password").stat().st_mode) == 0o600
    private = PrivateRedis(state, 6390, password)
    assert PrivateRedis.from_url(state, private.url) == private
    assert password not in private.shown_url and password not in private.cli_command()


def test_the_private_redis_refuses_connections_without_the_password(tmp_path: Path) -> None:
    private = PrivateRedis(tmp_path / "state", free_port(), load_password(tmp_path / "state"))
    argv = redis_server_argv(private.data_dir, private.port, config_file=private.write_config())
    assert private.password not in " ".join(argv)  # /proc/*/cmdline is world-readable
    assert stat.S_IMODE((private.data_dir / "clipper-auth.conf").stat().st_mode) == 0o600
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis.from_url(private.url, socket_timeout=5)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                assert client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=private.port, socket_timeout=5).set("rq:queue:default", "x")
        assert client.ping()
    finally:
        server.terminate()
        server.wait(timeout=10)
