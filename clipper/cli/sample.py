"""The sample video `clipper up` puts into an empty library, generated with FFmpeg's lavfi."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from clipper.errors import Canceled, EngineError

#: Object key of the sample in the source library.
SAMPLE_KEY = "samples/clipper-sample.mp4"

#: Start timecode embedded in the sample: drop-frame, as broadcast 29.97 material carries.
SAMPLE_TIMECODE = "01:00:00;00"

#: Wall-clock limit for generating the sample (a 30 s 720p encode takes ~16 s on 2 cores).
SAMPLE_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class SampleSpec:
    """What the sample looks like; the defaults resemble real press-conference footage."""

    seconds: float = 30.0
    width: int = 1280
    height: int = 720
    rate: str = "30000/1001"
    gop_frames: int = 60  # 2 s GOPs: a smart cut has keyframes to snap to
    b_frames: int = 2  # B-frames make copy-mode out-points misbehave, so demos show the real case
    timecode: str = SAMPLE_TIMECODE


def sample_argv(
    output: Path, spec: SampleSpec = SampleSpec(), ffmpeg_path: str = "ffmpeg"
) -> list[str]:
    """The FFmpeg command line that writes the sample to `output` (H.264 + AAC in MP4)."""
    video = f"testsrc2=size={spec.width}x{spec.height}:rate={spec.rate}"
    # A tone with a once-per-second beep so audio sync is audible in a cut.
    audio = "sine=frequency=440:beep_factor=4:sample_rate=48000"
    return [
        ffmpeg_path,
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        video,
        "-f",
        "lavfi",
        "-i",
        audio,
        "-t",
        f"{spec.seconds:g}",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-g",
        str(spec.gop_frames),
        "-bf",
        str(spec.b_frames),
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-timecode",
        spec.timecode,
        "-movflags",
        "+faststart",
        f"file:{output}",
    ]


def generate_sample(
    output: Path,
    spec: SampleSpec = SampleSpec(),
    ffmpeg_path: str = "ffmpeg",
    cancel: threading.Event | None = None,
) -> Path:
    """Write the sample video to `output` via a temp file; `cancel` stops FFmpeg early."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.stem}.partial{output.suffix}")
    deadline = time.monotonic() + SAMPLE_TIMEOUT_SECONDS
    # stderr goes to a file: a pipe nobody drains would block FFmpeg once it fills.
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(
                sample_argv(partial, spec, ffmpeg_path),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
        except OSError as exc:
            raise EngineError(f"could not run {ffmpeg_path}: {exc}") from exc
        try:
            while proc.poll() is None:
                if (cancel is not None and cancel.is_set()) or time.monotonic() > deadline:
                    raise Canceled("sample generation stopped")
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.2)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.returncode != 0:
                partial.unlink(missing_ok=True)
        if proc.returncode != 0 or not partial.exists():
            errors.seek(0)
            tail = errors.read().decode(errors="replace").strip()[-500:]
            raise EngineError(f"could not generate the sample video: {tail}")
    partial.replace(output)
    return output
