"""A small process supervisor for `clipper up`: start children, watch them, stop them all.

Every child runs in its own session (so a terminal Ctrl-C reaches only the supervisor, which
then stops the children in order: workers and API first, Redis last) and gets
PR_SET_PDEATHSIG=SIGKILL (so even a `kill -9` of the supervisor leaves no orphan).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from clipper.lifetime import adopt_orphans, die_with_parent

#: Seconds a child gets between SIGTERM and SIGKILL (an RQ worker finishes its job meanwhile).
DEFAULT_GRACE_SECONDS = 10.0

#: How often the supervisor looks at its children.
POLL_INTERVAL_SECONDS = 0.2

#: After the grace period a second SIGTERM (RQ's cold shutdown: it kills its work-horse) gets
#: this long before SIGKILL.
SECOND_TERM_SECONDS = 2.0

def _adopted(known: set[int]) -> dict[int, tuple[str, str]]:
    """Our child processes that we did not start (orphans re-parented to us): {pid: (name,
    state)}; state `Z` is one that already died and only needs reaping."""
    me, found = os.getpid(), {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in known:
            continue
        try:
            stat = (entry / "stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError, ValueError):
            continue
        if int(ppid) == me:
            found[int(entry.name)] = (name, state)
    return found


@dataclass
class Child:
    """One supervised process; `tier` orders the shutdown (highest tier stops first)."""

    name: str
    argv: list[str]
    tier: int
    process: subprocess.Popen[bytes]
    log: IO[bytes] | None = None
    stopping: bool = False

    @property
    def pid(self) -> int:
        """The child's process id (also its process group id)."""
        return self.process.pid


@dataclass
class Supervisor:
    """Starts children, reports the first unexpected exit and stops everything on request."""

    grace_seconds: float = DEFAULT_GRACE_SECONDS
    say: Callable[[str], None] = print
    #: Become a child subreaper and kill adopted orphans on stop (`clipper up`; not in tests
    #: that share their process with others).
    reap_orphans: bool = False
    children: list[Child] = field(default_factory=list)
    #: Set by a second Ctrl-C: skip the grace period and kill at once.
    hurry: threading.Event = field(default_factory=threading.Event)

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        tier: int = 1,
        log_path: Path | None = None,
    ) -> Child:
        """Start `argv` as child `name`; output goes to `log_path`, or to our own stdout/stderr."""
        if self.reap_orphans and not self.children:
            adopt_orphans()
        log: IO[bytes] | None = None
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log = log_path.open("ab")
        try:
            process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT if log is not None else None,
                start_new_session=True,
                # preexec_fn is unsafe with threads running: start children before any thread.
                preexec_fn=die_with_parent,
            )
        except OSError:
            if log is not None:
                log.close()
            raise
        child = Child(name=name, argv=argv, tier=tier, process=process, log=log)
        self.children.append(child)
        return child

    def exited(self) -> Child | None:
        """The first child that exited although nobody asked it to, if any."""
        for child in self.children:
            if not child.stopping and child.process.poll() is not None:
                return child
        return None

    def wait(self, stop: threading.Event, until: Callable[[], bool] | None = None) -> Child | None:
        """Block until `stop` is set, `until()` is true, or a child dies (then return it)."""
        while not stop.is_set():
            dead = self.exited()
            if dead is not None:
                return dead
            if until is not None and until():
                return None
            stop.wait(POLL_INTERVAL_SECONDS)
        return None

    def stop_all(self) -> None:
        """Stop every child, highest tier first: SIGTERM, wait the grace period, then SIGKILL."""
        for tier in sorted({c.tier for c in self.children}, reverse=True):
            group = [c for c in self.children if c.tier == tier]
            for child in group:
                self._terminate(child)
            deadline = time.monotonic() + self.grace_seconds
            for child in group:
                self._wait_or_kill(child, deadline)
        if self.reap_orphans:
            self._kill_adopted()
        for child in self.children:
            if child.log is not None:
                child.log.close()

    def _kill_adopted(self) -> None:
        known = {c.pid for c in self.children}
        for _round in range(10):  # killing an orphan can orphan its own children: repeat
            orphans = _adopted(known)
            if not orphans:
                return
            for pid, (name, state) in orphans.items():
                if state == "Z":
                    continue  # already dead: the waitpid below is all it needs
                self.say(f"killing orphaned process {pid} ({name})")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            for pid in orphans:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)

    def _terminate(self, child: Child) -> None:
        child.stopping = True
        if child.process.poll() is None:
            self.say(f"stopping {child.name} (pid {child.pid})")
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)

    def _wait_or_kill(self, child: Child, deadline: float) -> None:
        while child.process.poll() is None and time.monotonic() < deadline:
            if self.hurry.is_set():
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=POLL_INTERVAL_SECONDS)
        if child.process.poll() is None and not self.hurry.is_set():
            # A second SIGTERM is RQ's cold shutdown: the worker kills its work-horse itself.
            self.say(f"{child.name} did not stop in time: asking once more, then killing it")
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=SECOND_TERM_SECONDS)
        # Kill the whole group even after a clean exit: an RQ work-horse or an FFmpeg the
        # child started may still be in it. The group id stays reserved while members live.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        child.process.wait()


def lock_dir(directory: Path) -> IO[bytes] | None:
    """Take `directory`'s exclusive lock (held while the returned file stays open), or None
    when another process holds it: two supervisors must not share one Redis data folder."""
    directory.mkdir(parents=True, exist_ok=True)
    handle = (directory / ".lock").open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port and we may bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", preferred: int | None = None) -> int:
    """`preferred` if it is free, otherwise a port the kernel picks."""
    if preferred is not None and port_is_free(host, preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def redis_server_argv(
    data_dir: Path,
    port: int,
    redis_server: str = "redis-server",
    *,
    config_file: Path | None = None,
) -> list[str]:
    """A private, persistent redis-server: AOF on, never evicts (evicting would lose jobs).

    `config_file` (read first, e.g. one holding `requirepass`) keeps secrets off the command
    line, which every local user can read in /proc."""
    config = [str(config_file)] if config_file is not None else []
    return [
        redis_server,
        *config,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--maxmemory-policy",
        "noeviction",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        "--logfile",
        "",  # log to stdout, which the supervisor sends to a file
    ]
