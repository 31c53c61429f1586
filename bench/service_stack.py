"""The whole service for the benchmark: Redis, S3 behind a byte counter, API and worker.

Reuses the test fixtures' real servers (tests/fixtures/services.py): a private redis-server on
a free port, ministack's S3 with signature checks, and `CountingProxy`, through which the API
and the worker reach S3, so every byte the store delivers to them is counted. Signed download
links are made for the S3 server directly (`localhost:<port>`), so downloads are not counted.
Everything listens on 127.0.0.1 and `close()` stops every process this module started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx
from pydantic import SecretStr

from clipper.settings import Settings
from clipper.storage import open_storage
from tests.fixtures.app import API_KEYS, api_keys_setting, settings_env
from tests.fixtures.services import CountingProxy, RedisServer, S3Server, free_port, s3_settings

#: The benchmark's client (one of the test keys).
CLIENT = "alice"
STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


class ServiceStack:
    """Start with `with ServiceStack() as stack:`; every child is stopped on exit."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="clipper-bench-")
        self.root = Path(self._tmp.name)
        self.redis = RedisServer(self._mkdir("redis"))
        self.s3 = S3Server(self._mkdir("s3"))
        self.proxy: CountingProxy | None = None
        self.api_url = ""
        self.api_workers = 1
        self._api: subprocess.Popen[bytes] | None = None
        self._worker: subprocess.Popen[bytes] | None = None
        self.settings = Settings()
        self.direct_settings = Settings()

    def _mkdir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def __enter__(self) -> ServiceStack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        """Redis, S3, the proxy, then the API and one worker."""
        self.redis.start()
        self.s3.start()
        self.proxy = CountingProxy(self.s3.port)
        # Uploads of the sources go straight to S3 (not counted); the service goes via the proxy.
        self.direct_settings = s3_settings(self.s3, redis_url=self.redis.url)
        self.settings = self.direct_settings.model_copy(
            update={
                "s3_endpoint": self.proxy.endpoint,
                "api_keys": api_keys_setting(),
                "work_dir": self._mkdir("work"),
                "state_dir": self._mkdir("state"),
                "link_secret": SecretStr("bench-link-secret-0123456789"),
            }
        )
        open_storage(self.direct_settings).ensure_buckets()
        self.start_api(workers=1)
        self.start_worker()

    def _env(self, *, s3_via_proxy: bool) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPPER_")}
        settings = self.settings
        if not s3_via_proxy:
            settings = settings.model_copy(update={"s3_endpoint": self.direct_settings.s3_endpoint})
        return env | settings_env(settings)

    def _spawn(
        self, name: str, argv: list[str], *, s3_via_proxy: bool = True
    ) -> subprocess.Popen[bytes]:
        log = (self._mkdir("logs") / f"{name}.log").open("ab")
        cli = [sys.executable, "-m", "clipper.cli"]
        return subprocess.Popen(
            [*cli, *argv],
            env=self._env(s3_via_proxy=s3_via_proxy),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            start_new_session=True,  # Ctrl-C reaches the bench only; close() stops children
        )

    def start_api(self, *, workers: int, s3_via_proxy: bool = True) -> None:
        """(Re)start `clipper api --workers N` on a fresh port and wait for /healthz.

        Without `s3_via_proxy` the API talks to S3 directly: the proxy's threads live in this
        process and would share the GIL with the benchmark's own clock.
        """
        _stop(self._api)
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        self.api_workers = workers
        self.settings = self.settings.model_copy(update={"public_base_url": self.api_url})
        argv = ["api", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        self._api = self._spawn("api", argv, s3_via_proxy=s3_via_proxy)
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            try:
                if httpx.get(f"{self.api_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self._api.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start:\n{self.logs()}")
            time.sleep(0.1)

    def start_worker(self, *, s3_via_proxy: bool = True) -> None:
        """One `clipper worker` (serves every queue)."""
        self._worker = self._spawn("worker", ["worker"], s3_via_proxy=s3_via_proxy)

    def stop_worker(self) -> None:
        """Stop the worker (jobs queued afterwards stay queued)."""
        _stop(self._worker)
        self._worker = None

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by the API (all its processes), the S3 server and Redis."""
        pids = {
            "api": _group_pids(self._api.pid) if self._api else [],
            # The fixtures keep their process private; the benchmark only reads its pid.
            "s3": [self.s3._proc.pid] if self.s3._proc else [],
            "redis": [self.redis._proc.pid] if self.redis._proc else [],
        }
        return {name: sum(_cpu_seconds(pid) for pid in group) for name, group in pids.items()}

    def connections_per_process(self) -> list[int]:
        """Established connections to the API port held by each API process (most first)."""
        port = int(self.api_url.rsplit(":", 1)[1])
        inodes = _established_inodes(port)
        counts = []
        for pid in _group_pids(self._api.pid) if self._api else []:
            try:
                links = [os.readlink(f) for f in Path(f"/proc/{pid}/fd").iterdir()]
            except OSError:
                continue
            held = sum(link[8:-1] in inodes for link in links if link.startswith("socket:["))
            if held:
                counts.append(held)
        return sorted(counts, reverse=True)

    def client(self, timeout_seconds: float = 30.0) -> httpx.Client:
        """An HTTP client of the API with the benchmark's key."""
        return httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {API_KEYS[CLIENT]}"},
            timeout=timeout_seconds,
        )

    def logs(self) -> str:
        """Tails of the API and worker logs (for error messages)."""
        parts = []
        for path in sorted((self.root / "logs").glob("*.log")):
            parts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def close(self) -> None:
        """Stop worker, API, proxy, S3 and Redis; remove the temp folder."""
        _stop(self._worker)
        _stop(self._api)
        if self.proxy is not None:
            self.proxy.stop()
        for server in (self.s3, self.redis):
            try:
                server.stop()
            except Exception as exc:  # keep stopping the others
                print(f"could not stop {type(server).__name__}: {exc}", file=sys.stderr)
        self._tmp.cleanup()


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM the child's whole process group (uvicorn workers, RQ horse, FFmpeg); then KILL."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT_SECONDS)
    except ProcessLookupError:
        proc.wait(timeout=STOP_TIMEOUT_SECONDS)


def _group_pids(pgid: int) -> list[int]:
    """Processes in a process group (uvicorn's supervisor and its worker processes)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            if int(fields[2]) == pgid:  # field 5 of stat: pgrp
                pids.append(int(entry.name))
    return pids


def _established_inodes(port: int) -> set[str]:
    """Socket inodes of ESTABLISHED TCP connections whose local port is `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                inodes.add(fields[9])
    return inodes


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process (children that exited are not counted)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
