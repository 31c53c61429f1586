"""`clipper api --workers N`: N uvicorn processes, each with its own SO_REUSEPORT socket.

Why not uvicorn's own `workers=N`: its processes share one listening socket, and the first
one awake accepts every pending connection in one go. In the service benchmark 50 clients
connecting within half a second ended up 36/14 and 43/7 on two processes, so the busier
process set the latency of the whole burst. With one socket per process and SO_REUSEPORT the
kernel spreads connections over the processes by their address hash (25 ± 4 of 50).

The supervisor starts the processes, restarts one that dies, and passes SIGTERM/SIGINT on
(each uvicorn shuts down gracefully); it exits when they have all stopped.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger(__name__)

#: The app factory every process serves.
APP = "api.app:create_app"
#: How often the supervisor looks for processes that died.
CHECK_SECONDS = 0.5
#: Longest wait for the processes to stop after SIGTERM before they are killed.
STOP_TIMEOUT_SECONDS = 30.0
#: A process that dies sooner than this after its start failed to start.
EARLY_EXIT_SECONDS = 10.0
#: Failed starts in a row after which the supervisor stops everything and exits 1 (a
#: broken deployment must not restart forever); between them it waits 0.5, 1, 2, … s.
MAX_FAILED_STARTS = 5


def reuse_port_supported() -> bool:
    """True where the kernel balances connections over SO_REUSEPORT sockets: Linux (on the
    BSDs and macOS the option exists but the last socket bound gets every connection)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket with SO_REUSEPORT, so that every process can bind its own."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve_one(host: str, port: int, log_level: str, app: str = APP) -> None:
    """One API process: uvicorn on its own SO_REUSEPORT socket; dies with the supervisor,
    even a SIGKILLed one (no orphan keeps the port)."""
    import uvicorn

    from clipper.lifetime import die_with_parent

    die_with_parent()
    config = uvicorn.Config(app, factory=True, proxy_headers=True, log_level=log_level)
    uvicorn.Server(config).run(sockets=[listening_socket(host, port)])


@dataclass
class _Supervisor:
    """The API processes of one `serve` call: starts them, replaces those that die, stops
    them all on SIGTERM/SIGINT or after MAX_FAILED_STARTS failed starts in a row."""

    args: tuple[str, int, str, str]  # serve_one's (host, port, log_level, app)
    context: SpawnContext = field(default_factory=lambda: multiprocessing.get_context("spawn"))
    children: list[BaseProcess] = field(default_factory=list)
    started: dict[int, float] = field(default_factory=dict)  # id(process) → monotonic start
    stopping: bool = False
    failed_starts: int = 0
    status: int = 0

    def start(self) -> BaseProcess:
        """One more API process."""
        process = self.context.Process(target=serve_one, args=self.args, daemon=False)
        process.start()
        self.started[id(process)] = time.monotonic()
        return process

    def stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        """Ask every process to shut down gracefully (also the signal handler)."""
        self.stopping = True
        for process in self.children:
            if process.is_alive() and process.pid is not None:
                process.terminate()

    def replace_dead(self) -> None:
        """Start a new process for each that exited; give up on a deployment that keeps
        failing at start (exit status 1), waiting 0.5, 1, 2, … s between failed starts."""
        for i, process in enumerate(self.children):
            if self.stopping or process.is_alive():
                continue
            early = time.monotonic() - self.started.pop(id(process)) < EARLY_EXIT_SECONDS
            self.failed_starts = self.failed_starts + 1 if early else 0
            if self.failed_starts >= MAX_FAILED_STARTS:
                log.error(
                    "API processes keep dying at start (%s in a row, last exit %s): stopping",
                    self.failed_starts,
                    process.exitcode,
                )
                self.stop()
                self.status = 1
                return
            log.warning(
                "API process %s exited (%s); starting another", process.pid, process.exitcode
            )
            if self.failed_starts:
                time.sleep(min(30.0, 0.5 * 2 ** (self.failed_starts - 1)))
            self.children[i] = self.start()

    def join(self) -> None:
        """Wait up to STOP_TIMEOUT_SECONDS for the processes to stop, then kill the rest."""
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process in self.children:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def serve(host: str, port: int, processes: int, *, log_level: str = "info", app: str = APP) -> int:
    """Run `processes` API processes until SIGTERM or SIGINT; restart any that dies. The exit
    status: 0, or 1 after MAX_FAILED_STARTS starts in a row that died at once."""
    from clipper.logs import setup_logging

    setup_logging("INFO")  # the supervisor's own lines, as JSON like the rest
    listening_socket(host, port).close()  # fail here, not in every child, if the port is taken
    supervisor = _Supervisor((host, port, log_level, app))
    supervisor.children = [supervisor.start() for _ in range(processes)]
    previous = {sig: signal.signal(sig, supervisor.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not supervisor.stopping:
            time.sleep(CHECK_SECONDS)
            supervisor.replace_dead()
        supervisor.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return supervisor.status
