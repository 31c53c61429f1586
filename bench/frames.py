"""Which source frames a clip really starts and ends with, by picture comparison.

A frame count alone cannot tell a clip that is one frame short from one shifted by one. Here
the clip's first and last pictures are compared (downscaled, grey, mean squared error) with
the source's frames around the requested first and last index; the best match gives the
offset. Only a few frames are decoded, so this stays cheap on a 60-minute source.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

#: Small enough to decode fast, large enough that neighbouring testsrc2 frames differ clearly.
THUMB_W, THUMB_H = 320, 180
#: Source frames compared on each side of the requested last frame.
WINDOW_FRAMES = 3
#: Extra source frames before the requested first frame: `fast` starts up to a GOP early.
LEAD_FRAMES = 70
#: Below this PSNR (dB) the best match is not trusted: the picture is not a source frame.
MIN_MATCH_PSNR_DB = 30.0
_TIMEOUT_SECONDS = 600


def _decode(args: list[str]) -> NDArray[np.uint8]:
    cmd = [
        "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", *args, "-fps_mode", "passthrough",
        "-vf", f"scale={THUMB_W}:{THUMB_H}:flags=area,format=gray", "-f", "rawvideo", "pipe:1",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, timeout=_TIMEOUT_SECONDS)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace").strip()[-300:])
    frame_bytes = THUMB_W * THUMB_H
    count = len(done.stdout) // frame_bytes
    data = np.frombuffer(done.stdout[: count * frame_bytes], dtype=np.uint8)
    return data.reshape(count, THUMB_H, THUMB_W)


def source_frames(source: Path, first: int, count: int, rate: Fraction) -> NDArray[np.uint8]:
    """`count` source frames from index `first` (accurate seek to half a frame before it)."""
    seek = max(Fraction(0), (first - Fraction(1, 2)) / rate)
    return _decode(["-ss", f"{float(seek):.6f}", "-i", f"file:{source}", "-frames:v", str(count)])


def clip_ends(clip: Path) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """The clip's first and last pictures (the last found by decoding its final second)."""
    first = _decode(["-i", f"file:{clip}", "-frames:v", "1"])
    tail = _decode(["-sseof", "-1", "-i", f"file:{clip}"])
    if len(first) == 0 or len(tail) == 0:
        raise RuntimeError(f"no decodable video in {clip.name}")
    return first[0], tail[-1]


def psnr(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    """Peak signal-to-noise ratio in dB (inf for identical pictures)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * float(np.log10(255.0**2 / mse))


def best_offset(picture: NDArray[np.uint8], candidates: NDArray[np.uint8], base: int) -> int | None:
    """Index offset (relative to `base`, the candidates' expected position) of the best match."""
    scores = [psnr(picture, c) for c in candidates]
    if not scores or max(scores) < MIN_MATCH_PSNR_DB:
        return None
    return int(np.argmax(scores)) - base


def end_offsets(
    source: Path, clip: Path, first: int, last: int, rate: Fraction
) -> tuple[int | None, int | None]:
    """(first-frame offset, last-frame offset) of `clip` against source frames `first`/`last`."""
    clip_first, clip_last = clip_ends(clip)
    lead = min(LEAD_FRAMES, first)
    around_first = source_frames(source, first - lead, lead + WINDOW_FRAMES + 1, rate)
    around_last = source_frames(source, last - WINDOW_FRAMES, 2 * WINDOW_FRAMES + 1, rate)
    return (
        best_offset(clip_first, around_first, lead),
        best_offset(clip_last, around_last, WINDOW_FRAMES),
    )


def offset_text(offset: int | None) -> str:
    """'ok', '+1', '-17' or '?' (no trustworthy match)."""
    if offset is None:
        return "?"
    return "ok" if offset == 0 else f"{offset:+d}"
