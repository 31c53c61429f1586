"""`clipper cut` and `clipper probe` end to end, as a user runs them (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.fixtures.media import MediaSample

ROOT = Path(__file__).resolve().parents[2]


def _clipper(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clipper.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def _frames(path: Path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return int(out.strip())


def test_cut_json_report(media_h264_mov: MediaSample, tmp_path: Path) -> None:
    out = tmp_path / "clip.mov"
    # SMPTE from the embedded 10:00:00:00 at 25 fps: frames 25..74, 50 frames.
    result = _clipper(
        "cut", media_h264_mov.path, out, "--start", "10:00:01:00", "--end", "10:00:03:00", "--json"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["frame_count"] == 50 == _frames(out)
    assert report["segments"][0]["delivered_first"]["timecode"] == "10:00:01:00"
    assert report["segments"][0]["delivered_last"]["timecode"] == "10:00:02:24"
    assert report["verification"]["decode_errors"] == 0


def test_cut_segments_and_human_output(media_h264_mkv: MediaSample, tmp_path: Path) -> None:
    out = tmp_path / "joined.mkv"
    result = _clipper(
        "cut", media_h264_mkv.path, out, "--segment", "0.2", "0.6", "--segment", "2", "3.4"
    )
    assert result.returncode == 0, result.stderr
    # 25 fps: [5, 15) and [50, 85) -> 10 + 35 frames.
    assert _frames(out) == 45
    assert "segment 1: frames 50-84" in result.stdout


def test_bad_range_fails_with_one_line(media_h264_mov: MediaSample, tmp_path: Path) -> None:
    out = tmp_path / "never.mov"
    result = _clipper("cut", media_h264_mov.path, out, "--start", "3", "--end", "2")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "end" in lines[0]
    assert not out.exists()


def test_missing_source_and_junk(media_not_media: MediaSample, tmp_path: Path) -> None:
    missing = _clipper("cut", tmp_path / "nope.mp4", tmp_path / "o.mp4", "--start", "0")
    assert missing.returncode != 0 and missing.stderr.count("\n") == 1
    junk = _clipper("probe", media_not_media.path)
    assert junk.returncode != 0 and junk.stderr.startswith("error:")
    assert junk.stderr.count("\n") == 1


def test_probe_json_and_keyframes(media_h264_mov: MediaSample) -> None:
    result = _clipper("probe", media_h264_mov.path, "--json", "--near", "2.0")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["video"]["frame_rate"] == "25/1"
    assert data["start_timecode"] == "10:00:00:00"
    assert 1.2 in data["keyframes_near"]  # GOP 30 at 25 fps: keyframes every 1.2 s
    human = _clipper("probe", media_h264_mov.path)
    assert "10:00:00:00" in human.stdout and "25/1" in human.stdout
