"""H.264 with open GOPs (x264 open-gop): `exact` falls back to a re-encode and stays exact;
`fast` refuses with a reason instead of writing a clip whose first frames cannot decode.

HEVC marks the leading pictures of an open-GOP keyframe (RASL) and `fast` drops them;
H.264 marks nothing, and dropping the wrong NAL types once removed the clip's PPS.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from clipper import engine
from clipper.errors import BadRequest
from clipper.spec import Accuracy, CutSpec, Segment
from tests import framecheck as fc


@pytest.fixture(scope="module")
def open_gop_h264(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("open_gop") / "open_gop.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=6",
         "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=6",
         "-c:v", "libx264", "-preset", "veryfast",
         "-x264-params", "keyint=25:min-keyint=25:open-gop=1:bframes=3", "-c:a", "aac",
         str(out)],
        check=True, timeout=120,
    )  # fmt: skip
    return out


def test_fast_refuses_with_a_reason(open_gop_h264: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "clip.mp4"
    out.parent.mkdir()
    spec = CutSpec(segments=(Segment(1.3, 3.7),), accuracy=Accuracy.FAST)
    with pytest.raises(BadRequest, match="open GOP") as caught:
        engine.cut(open_gop_h264, out, spec)
    assert caught.value.field == "accuracy"
    assert list(out.parent.iterdir()) == []


def test_exact_reencodes_the_range_and_stays_exact(open_gop_h264: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    spec = CutSpec(segments=(Segment(1.3, 3.7),), accuracy=Accuracy.EXACT)
    report = engine.cut(open_gop_h264, out, spec)
    assert report.strategy == "reencode"
    assert "open GOP" in (report.segments[0].fallback_reason or "")
    # Frames whose time is in [1.3, 3.7) at 25 fps: 33 (1.32 s) to 92 (3.68 s).
    assert len(fc.video_frames(out).timestamps) == 60
    got, src = fc.gray_frames(out), fc.gray_frames(open_gop_h264)
    assert fc.best_match(got[0], src, 33)[0] == 33, "the first frame is not source frame 33"
    assert fc.best_match(got[-1], src, 92)[0] == 92, "the last frame is not source frame 92"
    assert fc.decode_errors(out) == ""
