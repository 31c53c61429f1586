"""Verification is judged first: deliberately broken files, built with FFmpeg here, must fail
it, and for the right reason; their unbroken twins must pass.

Each broken file is what a real bug left behind once: frames of two sizes (a rotated source's
re-encoded parts beside copied ones), a lost audio track, a changed language, a wrong or
mixed field order, a doubled timestamp and a hole (a Matroska join), or both at once with the
frame count and the span intact.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from clipper.engine import verify
from clipper.engine.media import ffprobe as probing
from clipper.engine.media.model import MediaInfo
from clipper.engine.plan.layout import plan_layout
from clipper.errors import VerificationFailed
from clipper.spec import Preset

RATE = Fraction(25)
FRAMES = 50
SIZE = "128x72"


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=120)


def _lavfi(size: str = SIZE, seconds: float = FRAMES / 25) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}"]


def _audio(frequency: int) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate=48000:duration=2"]


X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p"]
TWO_LANGUAGES = [
    "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:a", "aac",
    "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra",
]  # fmt: skip


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("verify")


def _expected(source: MediaInfo, extension: str) -> verify.Expected:
    layout = plan_layout(source, Preset.ORIGINAL, extension, copies_audio=True)
    return verify.Expected(
        frames=FRAMES, frame_rate=RATE, audio=bool(source.audio), decode_intervals=None,
        layout=layout,
    )  # fmt: skip


def _good(made: Path, extension: str) -> Path:
    path = made / f"good{extension}"
    if not path.exists():
        _ffmpeg(*_lavfi(), *_audio(440), *_audio(660), *X264, "-bf", "0", *TWO_LANGUAGES,
                "-shortest", str(path))  # fmt: skip
    return path


def _fails(path: Path, expected: verify.Expected, *words: str) -> str:
    with pytest.raises(VerificationFailed) as failed:
        verify.verify_output(path, expected)
    message = failed.value.message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("extension", [".mp4", ".mkv", ".ts"])
def test_the_unbroken_file_passes(made: Path, extension: str) -> None:
    good = _good(made, extension)
    result = verify.verify_output(good, _expected(probing.probe(good), extension))
    assert result.frame_count == FRAMES
    assert any("streams video, audio, audio" in line for line in result.compared)
    assert any("decoded frames: size, field order" in line for line in result.compared)


@pytest.mark.parametrize("extension", [".mp4", ".mkv"])
def test_a_lost_audio_track_fails(made: Path, extension: str) -> None:
    good = _good(made, extension)
    broken = made / f"one-track{extension}"
    _ffmpeg("-i", f"file:{good}", "-map", "0:v", "-map", "0:a:0", "-c", "copy", str(broken))
    _fails(broken, _expected(probing.probe(good), extension), "streams are video, audio,",
           "planned video, audio, audio")  # fmt: skip


@pytest.mark.parametrize("extension", [".mp4", ".mkv", ".ts"])
def test_a_changed_language_fails(made: Path, extension: str) -> None:
    good = _good(made, extension)
    broken = made / f"languages{extension}"
    _ffmpeg("-i", f"file:{good}", "-map", "0", "-c", "copy", "-metadata:s:a:1", "language=spa",
            str(broken))  # fmt: skip
    _fails(broken, _expected(probing.probe(good), extension), "audio 1 language is 'spa'",
           "planned 'fra'")  # fmt: skip


def _parts(made: Path, name: str, first: list[str], second: list[str]) -> Path:
    """Two MPEG-TS parts joined by stream copy into MKV, as Clipper joins its parts."""
    a, b, out = made / f"{name}-a.ts", made / f"{name}-b.ts", made / f"{name}.mkv"
    _ffmpeg(*first, *X264, "-bf", "0", "-frames:v", str(FRAMES // 2), "-f", "mpegts", str(a))
    _ffmpeg(*second, *X264, "-bf", "0", "-frames:v", str(FRAMES // 2), "-f", "mpegts", str(b))
    listing = made / f"{name}.ffconcat"
    listing.write_text(
        f"ffconcat version 1.0\nfile '{a}'\nduration 1.0\nfile '{b}'\nduration 1.0\n"
    )
    _ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(out))
    return out


def _video_only(made: Path, extension: str) -> MediaInfo:
    path = made / f"video-only{extension}"
    if not path.exists():
        _ffmpeg(*_lavfi(), *X264, "-bf", "0", str(path))
    return probing.probe(path)


def test_frames_of_two_sizes_fail(made: Path) -> None:
    """A rotated phone source once gave re-encoded parts turned upright beside copied ones."""
    broken = _parts(made, "sizes", _lavfi(), _lavfi(size="72x128"))
    _fails(broken, _expected(_video_only(made, ".mkv"), ".mkv"), "decoded frames are 72x128",
           "planned 128x72")  # fmt: skip


INTERLACED = ["-flags", "+ildct+ilme", "-x264-params", "interlaced=1:tff=1"]


def test_mixed_field_orders_fail(made: Path) -> None:
    """Re-encoded progressive parts around a copied interlaced middle."""
    a, b = made / "field-a.ts", made / "field-b.ts"
    _ffmpeg(*_lavfi(seconds=1), *X264, *INTERLACED, "-f", "mpegts", str(a))
    _ffmpeg(*_lavfi(seconds=1), *X264, "-f", "mpegts", str(b))
    broken = made / "fields.mkv"
    _ffmpeg("-i", f"concat:{a}|{b}", "-c", "copy", str(broken))
    source = replace(_video_only(made, ".mkv"), video=replace(
        _video_only(made, ".mkv").video, field_order="tt"))  # fmt: skip
    _fails(broken, _expected(source, ".mkv"), "mix progressive and interlaced")


def test_a_wrong_field_order_fails(made: Path) -> None:
    """An interlaced source cut into a progressive clip (or the other way round)."""
    progressive = made / "video-only.mkv"
    _video_only(made, ".mkv")
    interlaced_source = replace(_video_only(made, ".mkv"), video=replace(
        _video_only(made, ".mkv").video, field_order="tt"))  # fmt: skip
    _fails(progressive, _expected(interlaced_source, ".mkv"), "decoded frames are progressive")


#: Packet timestamps rewritten after encoding (no B-frames: packet N is frame N).
SETTS = {
    # The Matroska muxer keeps block times apart by one tick: 0.360 and 0.361 s.
    "doubled": ("if(eq(N,10),PREV_INPTS,PTS)", "1.0 ms after 0.360 s"),
    "hole": ("if(gte(N,10),PTS+DURATION,PTS)", "80.0 ms after 0.360 s"),
    # Frame 10 moved onto frame 40's slot: count and span intact, as the Matroska join left it.
    "hole and doubled": ("if(eq(N,10),PTS+30*DURATION,PTS)", "two frames share a timestamp"),
}


@pytest.mark.parametrize("case", sorted(SETTS))
def test_broken_timestamps_fail(made: Path, case: str) -> None:
    source = made / "video-only.mkv"
    media = _video_only(made, ".mkv")
    broken = made / f"setts-{case.replace(' ', '-')}.mkv"
    expression, words = SETTS[case]
    bsf = "setts=pts=" + expression.replace(",", r"\,")
    _ffmpeg("-i", f"file:{source}", "-c", "copy", "-bsf:v", bsf, str(broken))
    # Decoding only what a copy would decode: the timestamps alone must give it away.
    expected = replace(_expected(media, ".mkv"), decode_intervals=[])
    message = _fails(broken, expected, words)
    assert "video frames," not in message  # the frame count is the planned one
    if case == "hole and doubled":
        assert "frame timestamps span" not in message  # the old check alone passed it

