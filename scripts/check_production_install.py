"""The production install, checked as an operator would meet it (`make check-install`, CI).

A fresh virtualenv, `pip install .` constrained by `requirements/runtime.lock` and no extras;
then `clipper api` and `clipper worker` against a `redis-server` this check starts itself,
`/readyz`, `/dashboard` with and without admin credentials, and one small clip through the
API to `succeeded`. Everything it starts is stopped by pid. Any failure ends with one line,
`production install check failed: …`, and exit status 1.

Only the standard library: the check must not depend on what it checks.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "runtime.lock"

#: How long the API gets to become ready, and the clip to finish, seconds.
READY_TIMEOUT_SECONDS = 60.0
CLIP_TIMEOUT_SECONDS = 120.0


class CheckFailed(Exception):
    """One clear line for CI."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _say(text: str) -> None:
    print(f"check-install: {text}", flush=True)


def _run(argv: list[str], what: str, **kwargs: Any) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise CheckFailed(f"{what} exited with {done.returncode}: {tail[0]}")


class Processes:
    """What the check started, by pid, with their logs; stopped in reverse order."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.started.append((name, proc, log))
        return proc

    def check_alive(self) -> None:
        for name, proc, log in self.started:
            code = proc.poll()
            if code is not None:
                raise CheckFailed(f"{name} exited with {code}: {self.last_line(log)}")

    @staticmethod
    def last_line(log: Path) -> str:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        return lines[-1].strip() if lines else "(no output)"

    def stop_all(self) -> None:
        for _name, proc, _log in reversed(self.started):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _name, proc, _log in reversed(self.started):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _request(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (our own URL)
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def _wait_ready(base: str, procs: Processes) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    status, body = 0, b""
    while time.monotonic() < deadline:
        procs.check_alive()
        status, body = _request(f"{base}/readyz")
        if status == 200:
            return
        time.sleep(0.3)
    raise CheckFailed(
        f"/readyz did not answer 200 in {READY_TIMEOUT_SECONDS:g} s (last: {status} {body[:200]!r})"
    )


def _check_dashboard(base: str, admin: tuple[str, str]) -> None:
    status, _ = _request(f"{base}/dashboard/")
    if status != 401:
        raise CheckFailed(f"/dashboard without credentials answered {status}, expected 401")
    basic = base64.b64encode(f"{admin[0]}:{admin[1]}".encode()).decode()
    status, body = _request(f"{base}/dashboard/", headers={"Authorization": f"Basic {basic}"})
    if status != 200:
        raise CheckFailed(f"/dashboard with admin credentials answered {status}: {body[:200]!r}")


def _one_clip(base: str, api_key: str, source_key: str, procs: Processes) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {api_key}"}
    status, body = _request(
        f"{base}/v1/clips",
        method="POST",
        headers=auth,
        body={"source": source_key, "start": 0.5, "end": 1.5},
    )
    if status != 202:
        raise CheckFailed(f"POST /v1/clips answered {status}: {body[:300]!r}")
    clip = json.loads(body)
    deadline = time.monotonic() + CLIP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        procs.check_alive()
        status, body = _request(f"{base}/v1/clips/{clip['id']}", headers=auth)
        if status != 200:
            raise CheckFailed(f"GET /v1/clips/{{id}} answered {status}: {body[:300]!r}")
        clip = json.loads(body)
        if clip["status"] == "succeeded":
            return clip
        if clip["status"] in ("failed", "canceled"):
            raise CheckFailed(f"the clip ended {clip['status']}: {json.dumps(clip.get('error'))}")
        time.sleep(0.3)
    raise CheckFailed(f"the clip was still {clip['status']} after {CLIP_TIMEOUT_SECONDS:g} s")


def _check_download(clip: dict[str, Any]) -> None:
    result = clip.get("result") or {}
    status, data = _request(result.get("download_url", ""))
    if status != 200 or len(data) != result.get("size_bytes") or len(data) == 0:
        raise CheckFailed(
            f"the download link answered {status} with {len(data)} bytes, "
            f"expected {result.get('size_bytes')}"
        )


def _make_source(path: Path) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise CheckFailed("ffmpeg is not installed (scripts/install-system-deps.sh)")
    _run(
        [
            ffmpeg,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x90:rate=25:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=3",
            "-c:v",
            "libx264",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        ],
        "ffmpeg (test source)",
    )


@contextmanager
def _workspace(keep: bool) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="clipper-check-install-"))
    try:
        yield work
    finally:
        if keep:
            _say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _install(venv: Path, log_dir: Path) -> None:
    _say(f"fresh virtualenv, pip install . -c {LOCK.relative_to(ROOT)} (no extras)")
    _run([sys.executable, "-m", "venv", str(venv)], "python -m venv")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    # Build outside the checkout so the check leaves nothing in it.
    src = log_dir / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "var",
            "build",
            "*.egg-info",
            "__pycache__",
            ".*_cache",
            "tests",
            "bench",
        ),
    )
    _run([*pip, "install", "-c", str(LOCK), str(src)], "pip install .")


def _service_env(
    work: Path, redis_port: int, api_port: int
) -> tuple[dict[str, str], dict[str, str]]:
    keys = {"api": secrets.token_urlsafe(24), "admin": secrets.token_urlsafe(24)}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPPER_")}
    env.update(
        {
            "CLIPPER_ENV": "production",
            "CLIPPER_STATE_DIR": str(work / "state"),
            "CLIPPER_STORAGE": "local",
            "CLIPPER_LOCAL_STORAGE_DIR": str(work / "storage"),
            "CLIPPER_WORK_DIR": str(work / "scratch"),
            "CLIPPER_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "CLIPPER_PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
            "CLIPPER_API_KEYS": f"check:{keys['api']}",
            "CLIPPER_ADMIN_KEYS": f"ops:{keys['admin']}",
            "CLIPPER_LINK_SECRET": secrets.token_urlsafe(32),
        }
    )
    (work / "scratch").mkdir()
    return env, keys


def check(work: Path) -> None:
    """Run every step; raises CheckFailed with one line on the first that fails."""
    venv, logs = work / "venv", work / "logs"
    logs.mkdir()
    _install(venv, logs)
    clipper = str(venv / "bin" / "clipper")
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise CheckFailed("redis-server is not installed (scripts/install-system-deps.sh)")
    redis_port, api_port = _free_port(), _free_port()
    env, keys = _service_env(work, redis_port, api_port)
    procs = Processes(logs)
    try:
        procs.start(
            "redis-server",
            [
                redis_server,
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            env,
        )
        source = work / "source.mp4"
        _make_source(source)
        _run(
            [clipper, "sources", "add", str(source), "--key", "check/source.mp4"],
            "clipper sources add",
            env=env,
        )
        procs.start(
            "clipper api", [clipper, "api", "--host", "127.0.0.1", "--port", str(api_port)], env
        )
        procs.start("clipper worker", [clipper, "worker"], env)
        base = f"http://127.0.0.1:{api_port}"
        _wait_ready(base, procs)
        _say("/readyz 200")
        _check_dashboard(base, ("ops", keys["admin"]))
        _say("/dashboard 401 without credentials, 200 with")
        clip = _one_clip(base, keys["api"], "check/source.mp4", procs)
        _check_download(clip)
        _say(f"clip {clip['id']} succeeded, {clip['result']['size_bytes']} bytes downloaded")
    finally:
        procs.stop_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    args = parser.parse_args()
    with _workspace(args.keep) as work:
        try:
            check(work)
        except CheckFailed as exc:
            print(f"production install check failed: {exc}", file=sys.stderr, flush=True)
            return 1
    _say("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
