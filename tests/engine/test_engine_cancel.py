"""Cancel in any phase of a cut: `Canceled`, no output, no temp file, no FFmpeg left."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from clipper import engine
from clipper.engine.ffmpeg import runner as ffmpeg
from clipper.errors import Canceled
from clipper.spec import Accuracy, CutSpec, Segment
from tests.fixtures.media import MediaLibrary


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent has not reaped it yet).
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.parametrize(
    ("accuracy", "phase"),
    [
        (Accuracy.EXACT, "probing"),
        (Accuracy.EXACT, "cutting"),
        (Accuracy.EXACT, "verifying"),
        (Accuracy.FAST, "probing"),
        (Accuracy.FAST, "cutting"),
        (Accuracy.FAST, "verifying"),
    ],
)
def test_cancel_in_each_phase_leaves_nothing(
    media_library: MediaLibrary,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    accuracy: Accuracy,
    phase: str,
) -> None:
    src = media_library.get("h264_mp4").path
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    cancel = threading.Event()
    started: list[int] = []
    real_popen = ffmpeg.subprocess.Popen

    def spying_popen(*args: object, **kwargs: object) -> object:
        proc = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        started.append(proc.pid)
        return proc

    monkeypatch.setattr(ffmpeg.subprocess, "Popen", spying_popen)

    def progress(name: str, fraction: float) -> None:
        if name == phase:
            cancel.set()

    spec = CutSpec(segments=(Segment(1.3, 3.1),), accuracy=accuracy)
    with pytest.raises(Canceled):
        ctx = engine.RunContext(cancel=cancel, progress=progress)
        engine.cut(src, out_dir / "clip.mp4", spec, context=ctx)
    assert list(out_dir.iterdir()) == [], "a cancelled cut left files behind"
    assert not [pid for pid in started if _alive(pid)], "FFmpeg outlived the cancel"
