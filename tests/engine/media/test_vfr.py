"""Variable-frame-rate sources are refused with a clear reason, never cut wrong.

Clipper maps times to frames on a constant-rate grid. A source whose frame times leave that
grid (phones record such files) would get a clip of other frames than the ones asked for;
before this check, an `exact` cut of the VFR sample below "succeeded" with 45 frames where
the source holds 43 in the range.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from clipper import engine
from clipper.errors import InvalidMedia
from clipper.spec import Accuracy, CutSpec, Preset, Segment
from tests.fixtures.app import InProcessApp, upload_source
from tests.fixtures.media import VALID_SOURCES, MediaLibrary

#: From the tenth frame on, each ten frames come half a frame later: 30 fps nominal, frame
#: times off the grid (kept in a 1 ms time base). With the encoder's 1/30 s time base
#: instead, the same filter snaps the times back to the grid and drops frames.
JITTER = "setpts='(N+floor(N/10)*0.5)/(30*TB)'"
OFF_GRID = ("-vf", f"settb=1/1000,{JITTER}", "-fps_mode", "passthrough")
MISSING_FRAMES = ("-vf", JITTER, "-fps_mode", "vfr")


def _make(out: Path, *args: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=4",
         "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=4",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "aac", *args, str(out)],
        check=True, timeout=120,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def vfr_sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("vfr")
    return {
        "off-grid mp4": _make(d / "off_grid.mp4", *OFF_GRID),
        "off-grid mkv": _make(d / "off_grid.mkv", *OFF_GRID),
        "missing frames mp4": _make(d / "missing.mp4", *MISSING_FRAMES),
    }


@pytest.mark.parametrize("kind", ["off-grid mp4", "off-grid mkv", "missing frames mp4"])
@pytest.mark.parametrize(
    ("accuracy", "preset"),
    [
        (Accuracy.EXACT, Preset.ORIGINAL),
        (Accuracy.FAST, Preset.ORIGINAL),
        (Accuracy.EXACT, Preset.MP4),
    ],
)
def test_variable_frame_rate_is_refused(
    vfr_sources: dict[str, Path], tmp_path: Path, kind: str, accuracy: Accuracy, preset: Preset
) -> None:
    src = vfr_sources[kind]
    out = tmp_path / "out" / f"clip{src.suffix}"
    out.parent.mkdir()
    spec = CutSpec(segments=(Segment(1.0, 2.5),), accuracy=accuracy, preset=preset)
    with pytest.raises(InvalidMedia, match="variable frame rate"):
        engine.cut(src, out, spec)
    assert list(out.parent.iterdir()) == []


def test_constant_rate_sources_are_not_flagged(media_library: MediaLibrary) -> None:
    for name in VALID_SOURCES:
        media = engine.probe(media_library.get(name).path)
        assert not media.variable_frame_rate, name


def test_millisecond_timestamps_at_29_97_are_constant_rate(tmp_path: Path) -> None:
    """A 1 ms track timescale stores 29.97 fps as 33/34 ms steps: still a constant rate."""
    src = _make(tmp_path / "ms.mp4", "-r", "30000/1001", "-video_track_timescale", "1000")
    spec = CutSpec(segments=(Segment(1.0, 2.5),), accuracy=Accuracy.EXACT)
    report = engine.cut(src, tmp_path / "clip.mp4", spec)
    # Frames whose time is in [1.0, 2.5) at 30000/1001: indices 30 (1.001 s) to 74 (2.469 s).
    assert report.frame_count == 45
    assert report.verification.frame_count == 45


def test_the_api_refuses_a_variable_frame_rate_source_before_queueing(
    api_app: InProcessApp, vfr_sources: dict[str, Path]
) -> None:
    """The probe's sign (frames missing against the duration) is known at submit: 422."""
    key = f"phone/{uuid.uuid4().hex[:8]}.mp4"
    upload_source(api_app.settings, key, vfr_sources["missing frames mp4"])
    response = api_app.client().post("/v1/clips", json={"source": key, "start": 1, "end": 2})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "invalid_media" and body["field"] == "source"
    assert "variable frame rate" in body["detail"]
    assert api_app.queued_jobs() == 0


def test_the_cli_warns_and_refuses(vfr_sources: dict[str, Path], tmp_path: Path) -> None:
    src = vfr_sources["missing frames mp4"]

    def clipper(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "clipper.cli", *map(str, args)],
            capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[3],
        )  # fmt: skip

    probed = clipper("probe", src)
    assert probed.returncode == 0 and "variable frame rate" in probed.stdout
    out = tmp_path / "never.mp4"
    cut = clipper("cut", src, out, "--start", "1", "--end", "2")
    lines = cut.stderr.strip().splitlines()
    assert cut.returncode != 0 and len(lines) == 1 and "variable frame rate" in lines[0]
    assert not out.exists()
