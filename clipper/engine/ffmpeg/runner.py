"""The FFmpeg/ffprobe process runner.

Every FFmpeg/ffprobe process runs in its own session (process group) with
PR_SET_PDEATHSIG=SIGKILL, so it dies with its parent even when the parent is SIGKILLed (RQ
kills a timed-out work-horse that way). A wall-clock timeout, a cancel Event or the stall
watchdog kills the whole group. Exit code 0 is not proof of success: callers verify outputs
(clipper.engine.verify).

The stall watchdog: an FFmpeg started with `-progress` prints a block of `key=value` lines
every half second while it works, even when its output time does not move (decoding up to
an accurate seek point). No line for `EngineConfig.stall_seconds` means it is stuck (a
storage read that hangs inside `-rw_timeout`'s retries, a stopped process, a wedged
filesystem): it is killed and the run raises `Timeout`, a transient error the job queue
retries. Processes that print no progress (ffprobe, captured output) are left to the
wall-clock timeout.

Errors carry two texts (see `clipper.errors.ClipperError`): the message names what FFmpeg
said about the data with every URL, path and address taken out (clients see it); the
detail keeps the exit code and the stderr tail, redacted, for operators.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from clipper.engine.context import DEFAULT_CONTEXT, RunContext
from clipper.errors import Canceled, EngineError, Timeout, WorkDiskFull
from clipper.lifetime import die_with_parent
from clipper.logs import public_text, redact

#: How much of FFmpeg's stderr is kept for error messages.
STDERR_TAIL_LINES = 40
#: How often a running process is checked for cancel, timeout and stalls.
POLL_SECONDS = 0.05
#: Lines of the stderr tail a client sees in an error message (operators get them all).
PUBLIC_TAIL_LINES = 3
#: What FFmpeg prints when the disk it writes to is full (ENOSPC).
DISK_FULL_TEXT = "No space left on device"


@dataclass(frozen=True)
class RunResult:
    """What a finished process left behind."""

    stdout: str
    stderr_tail: str
    elapsed_seconds: float


def _failure(argv: Sequence[str], code: int, stderr_tail: str) -> EngineError | WorkDiskFull:
    tool = Path(argv[0]).name
    detail = f"{tool} exited with {code}: {stderr_tail}"
    if DISK_FULL_TEXT in stderr_tail:
        return WorkDiskFull(f"the work disk is full ({tool}: {DISK_FULL_TEXT})", detail=detail)
    public = public_text(stderr_tail).splitlines()[-PUBLIC_TAIL_LINES:]
    message = "\n".join(public) if public else f"{tool} exited with {code}"
    return EngineError(message, detail=detail)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def parse_progress_line(line: str, expected_seconds: float) -> float | None:
    """Fraction done from one `-progress` line (`out_time_us=…`); None when not usable."""
    key, _, value = line.strip().partition("=")
    if key not in ("out_time_us", "out_time_ms") or expected_seconds <= 0:
        return None
    try:
        micros = int(value)
    except ValueError:  # "N/A" before the first packet
        return None
    if micros < 0:
        return None
    return min(1.0, micros / 1_000_000 / expected_seconds)


class _Process:
    """One running FFmpeg/ffprobe with the threads that read its pipes and wait for it.

    A blocking wait in a thread wakes us the moment the process ends; Popen.wait(timeout)
    polls with sleeps growing to 50 ms, which added ~25 ms per process (measured: a fast cut
    is two processes of ~0.2 s).
    """

    def __init__(self, argv: Sequence[str], on_stdout: Callable[[str], None]) -> None:
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self.tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self.exited = threading.Event()
        self.last_output = time.monotonic()  # the stall watchdog's clock
        self._on_stdout = on_stdout
        targets = (self._drain_stderr, self._read_stdout, self._wait_exit)
        self._readers = [threading.Thread(target=f, daemon=True) for f in targets]
        for reader in self._readers:
            reader.start()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.tail.append(line.rstrip())

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.last_output = time.monotonic()
            self._on_stdout(line)

    def _wait_exit(self) -> None:
        self.proc.wait()
        self.exited.set()

    def watch(self, ctx: RunContext, stall_seconds: float | None) -> None:
        """Wait for the exit; kill the group on cancel, timeout, a stall (no stdout line for
        `stall_seconds`; None: not watched) or any exception."""
        deadline = None if ctx.timeout_seconds is None else time.monotonic() + ctx.timeout_seconds
        try:
            while not self.exited.wait(POLL_SECONDS):
                if ctx.canceled:
                    raise Canceled("canceled while FFmpeg was running")
                now = time.monotonic()
                if deadline is not None and now > deadline:
                    raise Timeout(
                        f"FFmpeg ran longer than {ctx.timeout_seconds:.0f} s and was killed"
                    )
                if stall_seconds is not None and now - self.last_output > stall_seconds:
                    raise Timeout(
                        f"FFmpeg reported no progress for {stall_seconds:g} s and was killed"
                    )
        except BaseException:
            _kill_group(self.proc)
            raise
        finally:
            for reader in self._readers:
                reader.join(timeout=5)


def run(
    argv: Sequence[str],
    ctx: RunContext = DEFAULT_CONTEXT,
    *,
    expected_seconds: float = 0.0,
    capture_stdout: bool = False,
    phase: str = "cutting",
) -> RunResult:
    """Run FFmpeg/ffprobe under `ctx` (its cancel, timeout, stall limit and progress, reported
    as `phase` from `-progress` lines against `expected_seconds`); raise Timeout, Canceled,
    WorkDiskFull or EngineError (with the stderr tail)."""
    started = time.monotonic()
    chunks: list[str] = []

    def on_stdout(line: str) -> None:
        if capture_stdout:
            chunks.append(line)
        elif (fraction := parse_progress_line(line, expected_seconds)) is not None:
            ctx.report(phase, fraction)

    reports_progress = not capture_stdout and "-progress" in argv
    stall_seconds = ctx.config.stall_seconds if reports_progress else None
    process = _Process(argv, on_stdout)
    process.watch(ctx, stall_seconds or None)
    stderr_tail = redact("\n".join(process.tail))
    code = process.proc.returncode
    if code != 0:
        raise _failure(argv, code, stderr_tail)
    return RunResult("".join(chunks), stderr_tail, time.monotonic() - started)
