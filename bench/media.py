"""Benchmark sources: 1080p30 H.264 (2 s GOP, B-frames) + AAC, generated once, cached.

The 1-minute source is encoded with libx264 from lavfi `testsrc2` plus temporal noise (grain
keeps it from compressing trivially, like camera footage); the long one is the short one
repeated by stream-copy concatenation (concat demuxer), so it costs I/O, not encoding.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

WIDTH, HEIGHT, FPS = 1920, 1080, 30
GOP_FRAMES = 2 * FPS
#: Encoder settings of the sources: a typical broadcast-ish H.264 file, ~10 Mbit/s.
SOURCE_VIDEO_ARGS = (
    "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-maxrate", "12M",
    "-bufsize", "24M", "-pix_fmt", "yuv420p", "-profile:v", "high", "-bf", "3",
    "-g", str(GOP_FRAMES), "-keyint_min", str(GOP_FRAMES), "-sc_threshold", "0",
)  # fmt: skip
SOURCE_AUDIO_ARGS = ("-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2")


@dataclass(frozen=True)
class Sources:
    """The two cached benchmark sources."""

    short: Path
    long: Path
    long_minutes: int


def run_ffmpeg(argv: Sequence[str], *, label: str, expected_seconds: float) -> None:
    """Run ffmpeg with a progress bar fed by `-progress pipe:1`; raise on a non-zero exit."""
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-progress", "pipe:1", *argv]
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with (
        Progress(*columns, transient=False) as bar,
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc,
    ):
        task = bar.add_task(label, total=expected_seconds)
        assert proc.stdout is not None
        for line in proc.stdout:
            key, _, value = line.strip().partition("=")
            # out_time_us is N/A (or negative) until the first packet is written.
            if key == "out_time_us" and value.lstrip("-").isdigit() and int(value) > 0:
                bar.update(task, completed=min(expected_seconds, int(value) / 1e6))
        stderr = proc.stderr.read() if proc.stderr else ""
        if proc.wait() != 0:
            raise RuntimeError(f"ffmpeg failed for {label}: {stderr.strip()[-2000:]}")
        bar.update(task, completed=expected_seconds)


def make_short_source(path: Path, seconds: int) -> None:
    """Encode the short source from lavfi (the only step that costs encoding time)."""
    video = f"testsrc2=s={WIDTH}x{HEIGHT}:r={FPS},noise=alls=6:allf=t"
    audio = "sine=frequency=440:sample_rate=48000"
    tmp = path.with_suffix(".part.mp4")
    argv = [
        "-y", "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio, "-t", str(seconds),
        *SOURCE_VIDEO_ARGS, *SOURCE_AUDIO_ARGS, "-movflags", "+faststart", str(tmp),
    ]  # fmt: skip
    run_ffmpeg(argv, label=f"encoding {seconds} s 1080p30 source", expected_seconds=seconds)
    tmp.replace(path)


def make_long_source(short: Path, path: Path, repeats: int, short_seconds: int) -> None:
    """Concatenate `repeats` copies of the short source without re-encoding."""
    listing = path.with_suffix(".txt")
    # The short source ends on a GOP boundary, so the joined file keeps a 2 s GOP throughout.
    listing.write_text("".join(f"file '{short.resolve()}'\n" for _ in range(repeats)))
    joined = path.with_suffix(".joined.mp4")
    tmp = path.with_suffix(".part.mp4")
    total = repeats * short_seconds
    try:
        argv = ["-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(joined)]
        run_ffmpeg(argv, label=f"joining {repeats} copies (stream copy)", expected_seconds=total)
        # The concat demuxer drops the MP4 edit lists and starts the video ~21 ms late; shift
        # it back so frame k sits at k/30 s in both sources and A/V sync matches the short one.
        offset = video_start_seconds(joined)
        argv = [
            "-y", "-itsoffset", f"{-offset:.6f}", "-i", str(joined), "-i", str(joined),
            "-map", "0:v", "-map", "1:a", "-c", "copy", "-movflags", "+faststart", str(tmp),
        ]  # fmt: skip
        run_ffmpeg(argv, label="moving the index to the front", expected_seconds=total)
    finally:
        listing.unlink(missing_ok=True)
        joined.unlink(missing_ok=True)
    tmp.replace(path)


def video_start_seconds(path: Path) -> float:
    """Start time of the first video stream, from ffprobe."""
    cmd = [
        "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
        "stream=start_time", "-of", "csv=p=0", f"file:{path}",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    return float(done.stdout.strip() or 0)


def ensure_sources(out_dir: Path, *, short_seconds: int = 60, long_minutes: int = 60) -> Sources:
    """Return the cached sources, generating whichever is missing."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = f"h264_{HEIGHT}p{FPS}_gop{GOP_FRAMES}"
    short = out_dir / f"src_{tag}_{short_seconds}s.mp4"
    long = out_dir / f"src_{tag}_{long_minutes}min.mp4"
    if not short.exists():
        make_short_source(short, short_seconds)
    if not long.exists():
        repeats = max(1, long_minutes * 60 // short_seconds)
        make_long_source(short, long, repeats, short_seconds)
    return Sources(short=short, long=long, long_minutes=long_minutes)
