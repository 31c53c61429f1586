"""Process lifetime on Linux: children that die with their parent, and a reaper of orphans.

One place for the `prctl` calls that the FFmpeg runner, the `clipper up` supervisor, the API
processes and the RQ worker all make.
"""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(option, value, 0, 0, 0)


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies (call it in a freshly forked child, e.g. as
    `preexec_fn`): even a `kill -9` of the parent then leaves no orphan behind."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def adopt_orphans() -> None:
    """Make this process the reaper of its orphaned descendants (Linux child subreaper).

    An RQ work-horse leaves its worker's process group (setpgrp), so killing a stuck worker's
    group misses it; as a subreaper we inherit it and can kill it instead of leaking it.
    """
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
