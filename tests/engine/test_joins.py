"""Split a source into contiguous segments at frame times, join them back in `exact` mode,
and the result must equal the source (the check the `smartcut` peer runs on itself).

Equal means: the same frame count, timestamps one frame apart throughout (no doubled frame,
no hole at a seam), every frame matched by the independent judge (`tests/framecheck.py`:
PSNR >= 35 dB against the source frame decoded on its own, and better than both of its
neighbours), and no decode errors. Sources are tiny (128x72, 4 s) so the matrix stays fast:
MP4 and Matroska; H.264 from Baseline to High 4:4:4 (8- and 10-bit; 4:2:0, 4:2:2, 4:4:4)
and HEVC 4:2:0 and 4:2:2 10-bit, which Debian's x264 and x265 all encode.
"""

from __future__ import annotations

import itertools
import math
import random
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from clipper import engine
from clipper.spec import Accuracy, CutSpec, Segment
from tests import framecheck as fc

FRAMES = 120
RATE = Fraction(30000, 1001)
#: The judge's bar: a re-encoded frame scores ~45-50 dB, its neighbours ~20-30 dB.
MIN_PSNR_DB = 35.0

#: name -> encoder arguments (GOP of 24 with B-frames where the profile has them).
CODECS = {
    "h264_baseline": ["-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p"],
    "h264_main": ["-c:v", "libx264", "-profile:v", "main", "-pix_fmt", "yuv420p"],
    "h264_high": ["-c:v", "libx264", "-profile:v", "high", "-pix_fmt", "yuv420p"],
    "h264_high10": ["-c:v", "libx264", "-profile:v", "high10", "-pix_fmt", "yuv420p10le"],
    "h264_high422": ["-c:v", "libx264", "-profile:v", "high422", "-pix_fmt", "yuv422p"],
    "h264_high422_10": ["-c:v", "libx264", "-profile:v", "high422", "-pix_fmt", "yuv422p10le"],
    "h264_high444": ["-c:v", "libx264", "-profile:v", "high444", "-pix_fmt", "yuv444p"],
    "h264_high444_10": ["-c:v", "libx264", "-profile:v", "high444", "-pix_fmt", "yuv444p10le"],
    "hevc_main": ["-c:v", "libx265", "-pix_fmt", "yuv420p"],
    "hevc_main422_10": ["-c:v", "libx265", "-pix_fmt", "yuv422p10le"],
}
_GOP = {
    "libx264": ["-x264-params", "keyint=24:min-keyint=24:scenecut=0"],
    # Closed GOPs: x265's default open GOP makes `exact` re-encode all (tested elsewhere).
    "libx265": ["-x265-params", "keyint=24:min-keyint=24:scenecut=0:open-gop=0:log-level=error"],
}


def _make(path: Path, codec: list[str], *, audio: bool) -> None:
    encoder = codec[codec.index("-c:v") + 1]
    sound = ["-f", "lavfi", "-i", "sine=frequency=500:sample_rate=48000:duration=4"]
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=128x72:rate={RATE}:duration=4",
         *(sound if audio else []), "-frames:v", str(FRAMES), *codec, *_GOP[encoder],
         # High quality, as a library's masters are: re-encoded frames keep the source's CRF.
         "-preset", "veryfast", "-crf", "16", *(["-c:a", "aac", "-shortest"] if audio else []),
         str(path)],
        check=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("joins")


def _source(folder: Path, name: str, extension: str, *, audio: bool = False) -> Path:
    path = folder / f"{name}{'-a' if audio else ''}{extension}"
    if not path.exists():
        _make(path, CODECS[name], audio=audio)
    return path


def _time(frame: int) -> str:
    """A time that selects exactly `frame`: its timestamp rounded down to the microsecond
    (a decimal string, so no float can round it past the frame)."""
    micros = math.floor(Fraction(frame) / RATE * 1_000_000)
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _split(count: int, seed: int) -> tuple[Segment, ...]:
    cuts = sorted(random.Random(seed).sample(range(1, FRAMES), count - 1))
    bounds = [0, *cuts, FRAMES]
    return tuple(Segment(_time(a), _time(b)) for a, b in itertools.pairwise(bounds))


def _assert_equals_source(source: Path, out: Path) -> None:
    src_frames, out_frames = fc.gray_frames(source), fc.gray_frames(out)
    assert len(out_frames) == len(src_frames) == FRAMES
    stamps = fc.frame_timestamps(out)
    steps = {b - a for a, b in itertools.pairwise(stamps)}
    tick = fc.video_frames(out).time_base  # one container tick: 1 ms in MKV, 1/30000 s in MP4
    assert all(abs(step - 1 / RATE) <= tick for step in steps), sorted(steps)
    weak = []
    for i, frame in enumerate(out_frames):
        score = fc.psnr(frame, src_frames[i])
        neighbours = [fc.psnr(frame, src_frames[j]) for j in (i - 1, i + 1) if 0 <= j < FRAMES]
        if score < MIN_PSNR_DB or any(n >= score for n in neighbours):
            weak.append((i, round(score, 1), [round(n, 1) for n in neighbours]))
    assert weak == [], f"frames not matched to their source frame: {weak[:5]}"
    assert fc.decode_errors(out) == ""


def _join(source: Path, out: Path, count: int, seed: int = 7) -> engine.AccuracyReport:
    spec = CutSpec(segments=_split(count, seed), accuracy=Accuracy.EXACT)
    return engine.cut(source, out, spec)


@pytest.mark.parametrize("extension", [".mp4", ".mkv"])
@pytest.mark.parametrize("count", [1, 2, 3, 10, 30])
def test_a_split_h264_high_source_joins_back_into_itself(
    sources: Path, tmp_path: Path, extension: str, count: int
) -> None:
    source = _source(sources, "h264_high", extension, audio=True)
    out = tmp_path / f"joined{extension}"
    report = _join(source, out, count)
    assert report.frame_count == FRAMES
    assert len(report.segments) == count
    _assert_equals_source(source, out)


@pytest.mark.slow
@pytest.mark.parametrize("extension", [".mp4", ".mkv"])
def test_a_hundred_segments_join_back(sources: Path, tmp_path: Path, extension: str) -> None:
    source = _source(sources, "h264_high", extension, audio=True)
    out = tmp_path / f"joined{extension}"
    _join(source, out, 100)
    _assert_equals_source(source, out)


@pytest.mark.slow
@pytest.mark.parametrize("extension", [".mp4", ".mkv"])
@pytest.mark.parametrize("name", sorted(CODECS))
@pytest.mark.parametrize("count", [2, 10])
def test_every_profile_joins_back(
    sources: Path, tmp_path: Path, name: str, extension: str, count: int
) -> None:
    source = _source(sources, name, extension)
    out = tmp_path / f"joined{extension}"
    report = _join(source, out, count, seed=count)
    assert report.frame_count == FRAMES
    if count == 2:  # ten segments of a 120-frame source are mostly shorter than a GOP
        assert report.frames_copied > 0, "nothing was copied: not a smart cut"
    _assert_equals_source(source, out)
