"""The ways of cutting a range that the engine benchmark times, side by side.

Each method takes (source, output, start, end) in seconds and returns a note (or "") when it
ran; it raises `Unavailable` when it cannot run here (engine not written yet, peer not
installed), and any other exception when it failed.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clipper.spec import Preset

#: What a raw full re-encode uses when the engine's encoder settings cannot be imported.
FALLBACK_VIDEO_ARGS = ("-c:v", "libx264", "-preset", "veryfast", "-crf", "18")
AUDIO_ARGS = ("-c:a", "aac", "-b:a", "128k")
#: Generous wall-clock limit for one run; a hung method must not hang the whole benchmark.
RUN_TIMEOUT_SECONDS = 1800

Method = Callable[[Path, Path, float, float], str]


class Unavailable(Exception):
    """The method cannot run on this machine; the table says why instead of a timing."""


def _ffmpeg(*argv: str) -> None:
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", *argv]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-500:] or f"ffmpeg exited {done.returncode}")


def encoder_args(source: Path) -> tuple[list[str], list[str], str]:
    """(video argv, audio argv, origin): the engine's own re-encode settings when it has them."""
    try:
        from clipper.engine import probe
        from clipper.engine.ffmpeg.encoders import audio_args, reencode_video_args
    except ImportError:
        return list(FALLBACK_VIDEO_ARGS), list(AUDIO_ARGS), "fallback: engine not importable"
    info = probe(source)
    video = _argv(reencode_video_args(info))
    audio = _argv(audio_args(info, ".mp4", Preset.ORIGINAL))
    return video, audio, "clipper.engine.ffmpeg.encoders.reencode_video_args/audio_args"


def _argv(options: dict[str, Any]) -> list[str]:
    # ffmpeg-python output options ({"c:v": "libx264"}) as a plain command line.
    return [item for key, value in options.items() for item in (f"-{key}", str(value))]


def raw_copy(source: Path, output: Path, start: float, end: float) -> str:
    """`ffmpeg -ss A -i src -t D -c copy`: the floor for any cut."""
    _ffmpeg("-ss", f"{start}", "-i", f"file:{source}", "-t", f"{end - start}", "-c", "copy",
            f"file:{output}")  # fmt: skip
    return ""


def make_raw_reencode(video_args: list[str], audio_args: list[str]) -> Method:
    """A full re-encode of the range with the given encoder settings (frame-exact, slow)."""

    def raw_reencode(source: Path, output: Path, start: float, end: float) -> str:
        _ffmpeg("-ss", f"{start}", "-i", f"file:{source}", "-t", f"{end - start}",
                *video_args, *audio_args, f"file:{output}")  # fmt: skip
        return ""

    return raw_reencode


def make_clipper(accuracy: str) -> Method:
    """Clipper's engine (`clipper.engine.cut`) in the given accuracy mode."""

    def clipper_cut(source: Path, output: Path, start: float, end: float) -> str:
        try:
            engine = importlib.import_module("clipper.engine")
            spec_mod = importlib.import_module("clipper.spec")
        except ImportError as exc:
            raise Unavailable(f"clipper.engine not importable ({exc})") from exc
        if not hasattr(engine, "cut"):
            raise Unavailable("clipper.engine has no cut() yet")
        spec = spec_mod.CutSpec(
            segments=(spec_mod.Segment(start=start, end=end),),
            accuracy=spec_mod.Accuracy(accuracy),
        )
        phases: dict[str, float] = {}

        def on_progress(phase: str, fraction: float) -> None:
            phases.setdefault(phase, time.perf_counter())

        report = engine.cut(
            source, output, spec, context=engine.RunContext(progress=on_progress)
        )
        return _report_note(report, phases, time.perf_counter())

    return clipper_cut


def _report_note(report: Any, phases: dict[str, float], finished: float) -> str:
    """Strategy, frames re-encoded/copied and seconds per phase, for the table's note column."""
    data = report.model_dump(mode="json") if hasattr(report, "model_dump") else {}
    parts = [f"{data.get('strategy', '?')}"]
    if "frames_reencoded" in data:
        parts.append(f"{data['frames_reencoded']} enc/{data.get('frames_copied', '?')} copied")
    starts = sorted(phases.items(), key=lambda item: item[1])
    ends = [t for _, t in starts[1:]] + [finished]
    parts += [f"{name} {end - began:.1f}s" for (name, began), end in zip(starts, ends, strict=True)]
    return ", ".join(parts)


def smartcut(source: Path, output: Path, start: float, end: float) -> str:
    """The peer: `smartcut SRC OUT --keep A,B` (PyPI `smartcut`, extra `bench`)."""
    if importlib.util.find_spec("smartcut") is None:
        raise Unavailable("smartcut not installed (pip install -e '.[bench]')")
    cmd = [sys.executable, "-m", "smartcut", str(source), str(output), "--keep", f"{start},{end}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS)
    if done.returncode != 0 or not output.exists():
        tail = (done.stderr or done.stdout).strip()[-300:]
        raise RuntimeError(f"smartcut exited {done.returncode}: {tail}")
    return ""


def count_frames(path: Path) -> int:
    """Decoded video frames of a file (`ffprobe -count_frames`, edit lists applied)."""
    cmd = [
        "ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
        "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", f"file:{path}",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-300:])
    return int(done.stdout.strip().split(",")[0])


def ffmpeg_version() -> str:
    """First line of `ffmpeg -version`, for the table's footer."""
    done = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, timeout=30)
    return done.stdout.splitlines()[0] if done.stdout else "ffmpeg ?"
