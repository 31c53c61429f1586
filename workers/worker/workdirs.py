"""Each job's scratch folder under the work root, and the sweep that removes dead jobs' folders.

A job holds an exclusive `flock` on its folder for as long as it runs. The kernel drops the
lock when the process dies, whatever kills it (SIGKILL, the OOM killer, RQ's timeout), so any
worker on the same host tells a live job's folder from a dead one's without asking Redis:
the retry of a clip holds the lock on its own new folder, while the folder its killed
attempt left is unlocked and goes. (The record's status cannot tell them apart: both
attempts belong to a `running` clip.)

A folder is made as `clipper-new-…`, locked, then renamed to `clipper-<clip id>-…` (the
lock follows the folder), so a sweep never meets a job folder that is not locked yet.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

#: Name prefix of a job's folder (followed by the clip id and a random part).
WORK_DIR_PREFIX = "clipper-"
#: Name prefix of a folder being set up (not locked for a few microseconds).
NEW_DIR_PREFIX = WORK_DIR_PREFIX + "new-"


@contextlib.contextmanager
def job_work_dir(root: Path, clip_id: str) -> Iterator[Path]:
    """A fresh folder for one attempt at `clip_id`, locked while in use, removed after."""
    root.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=NEW_DIR_PREFIX, dir=root))
    fd = os.open(new, os.O_RDONLY | os.O_DIRECTORY)
    path = root / f"{WORK_DIR_PREFIX}{clip_id}-{new.name[len(NEW_DIR_PREFIX) :]}"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel if this process dies
        new.rename(path)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(new, ignore_errors=True)
        os.close(fd)


def folders(root: Path, clip_id: str | None = None) -> list[Path]:
    """The job folders under `root` (of `clip_id`, or all, new ones included), live or not."""
    patterns = [f"{WORK_DIR_PREFIX}{clip_id}-*"] if clip_id else [
        f"{WORK_DIR_PREFIX}clp_*", f"{NEW_DIR_PREFIX}*"
    ]  # fmt: skip
    try:
        return sorted(path for pattern in patterns for path in root.glob(pattern))
    except OSError:
        return []


def sweep(root: Path, clip_id: str | None = None) -> list[Path]:
    """Remove the folders (of `clip_id`, or of every clip) whose job no longer runs."""
    removed = [path for path in folders(root, clip_id) if _remove_if_abandoned(path)]
    if removed:
        log.info("removed %d work folder(s) of dead jobs under %s", len(removed), root)
    return removed


def _remove_if_abandoned(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its job still runs
        shutil.rmtree(path, ignore_errors=True)  # while holding the lock
        return True
    finally:
        os.close(fd)
