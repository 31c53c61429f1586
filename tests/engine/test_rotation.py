"""Rotated phone video: stored landscape with a display matrix (how phones record portrait).

A smart cut once re-encoded its head and tail turned upright (1080x1920) beside the copied
middle (1920x1080) and dropped the matrix, and verification passed it. Now every frame must
keep the stored size, the rotation must survive, and the frames must be the source's.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from clipper import engine
from clipper.spec import Accuracy, CutSpec, Preset, Segment
from tests import framecheck as fc

STORED = (192, 108)


def _rotation(path: Path) -> int:
    data = fc.ffprobe_json(path, "-show_streams", "-select_streams", "v:0")
    for side in data["streams"][0].get("side_data_list") or []:
        if side.get("side_data_type") == "Display Matrix":
            return int(side["rotation"])
    return 0


@pytest.fixture(scope="module", params=[90, 270])
def phone_video(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rotation")
    plain, rotated = folder / "plain.mp4", folder / f"phone-{request.param}.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={STORED[0]}x{STORED[1]}:rate=30:duration=4",
         "-f", "lavfi", "-i", "sine=frequency=500:sample_rate=48000:duration=4",
         "-c:v", "libx264", "-preset", "veryfast", "-g", "15", "-bf", "2", "-c:a", "aac",
         str(plain)], check=True, timeout=120,
    )  # fmt: skip
    # A display matrix is written on a stream copy (FFmpeg 5.1: the `rotate` tag).
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(plain), "-c", "copy",
         "-metadata:s:v:0", f"rotate={request.param}", str(rotated)], check=True, timeout=60,
    )  # fmt: skip
    assert _rotation(rotated) != 0
    return rotated


def _frame_sizes(path: Path) -> set[tuple[int, int]]:
    data = fc.ffprobe_json(path, "-select_streams", "v:0", "-show_entries", "frame=width,height")
    return {(int(f["width"]), int(f["height"])) for f in data["frames"]}


@pytest.mark.parametrize(
    ("accuracy", "preset"),
    [(Accuracy.EXACT, Preset.ORIGINAL), (Accuracy.FAST, Preset.ORIGINAL),
     (Accuracy.EXACT, Preset.MP4)],
)  # fmt: skip
def test_a_rotated_phone_clip_keeps_its_frames_and_rotation(
    phone_video: Path, tmp_path: Path, accuracy: Accuracy, preset: Preset
) -> None:
    out = tmp_path / "clip.mp4"
    spec = CutSpec(segments=(Segment(2.3, 3.7),), accuracy=accuracy, preset=preset)
    report = engine.cut(phone_video, out, spec)
    if accuracy is Accuracy.EXACT and preset is Preset.ORIGINAL:
        assert report.strategy == "smart"
        assert report.frames_reencoded and report.frames_copied
    assert _frame_sizes(out) == {STORED}, "frames not at the stored size"
    assert _rotation(out) == _rotation(phone_video)
    # The frames are the source's, judged independently (as stored, not auto-rotated).
    first = report.segments[0].delivered_first.frame
    src, got = fc.gray_frames(phone_video), fc.gray_frames(out)
    assert len(got) == report.frame_count
    for i, frame in enumerate(got):
        assert fc.psnr(frame, src[first + i]) >= 35, f"frame {i} is not source frame {first + i}"
    assert fc.decode_errors(out) == ""
