"""Every stream of the source is in the clip or named as dropped, with its metadata.

The layout is checked apart from the engine: straight from ffprobe's listing of the clip,
not through Clipper's own reader or its plan.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from clipper import engine
from clipper.spec import Accuracy, CutSpec, Preset, Segment
from tests import framecheck as fc

LANGUAGES = ["eng", "fra", "deu", "spa", "ita", "nld", "por", "swe"]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=120)


def _streams(path: Path) -> list[dict[str, Any]]:
    data = fc.ffprobe_json(path, "-show_streams")
    return list(data["streams"])


def _tag(stream: dict[str, Any], name: str) -> str | None:
    tags = {k.lower(): v for k, v in (stream.get("tags") or {}).items()}
    return tags.get(name)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("streams")


def _source(folder: Path, tracks: int, extension: str, *, subtitles: bool) -> Path:
    path = folder / f"src-{tracks}{'-subs' if subtitles else ''}{extension}"
    if path.exists():
        return path
    srt = folder / "cues.srt"
    srt.write_text(
        "1\n00:00:01,000 --> 00:00:02,000\nhello\n\n2\n00:00:03,000 --> 00:00:04,000\nbye\n"
    )
    args = ["-f", "lavfi", "-i", "testsrc2=size=128x72:rate=25:duration=5"]
    for t in range(tracks):
        args += ["-f", "lavfi", "-i", f"sine=frequency={300 + 50 * t}:sample_rate=48000:duration=5"]
    if subtitles:
        args += ["-i", str(srt)]
    maps = ["-map", "0:v"] + [x for t in range(tracks) for x in ("-map", f"{t + 1}:a")]
    if subtitles:
        maps += ["-map", f"{tracks + 1}:s"]
    meta = []
    for t in range(tracks):
        meta += [f"-metadata:s:a:{t}", f"language={LANGUAGES[t]}",
                 f"-metadata:s:a:{t}", f"title=Track {LANGUAGES[t]}"]  # fmt: skip
    subs = ["-c:s", "mov_text" if extension == ".mp4" else "srt"] if subtitles else []
    timecode = ["-timecode", "10:00:00:00"] if extension == ".mp4" else []
    _ffmpeg(*args, *maps, "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
            "-c:a", "aac", *subs, *meta, *timecode, "-disposition:a:1", "0", str(path))  # fmt: skip
    return path


@pytest.mark.parametrize("accuracy", [Accuracy.EXACT, Accuracy.FAST])
def test_a_bilingual_mp4_keeps_its_languages_and_names_its_subtitles(
    folder: Path, tmp_path: Path, accuracy: Accuracy
) -> None:
    source = _source(folder, 2, ".mp4", subtitles=True)
    out = tmp_path / "clip.mp4"
    report = engine.cut(source, out, CutSpec(segments=(Segment(1.3, 3.6),), accuracy=accuracy))
    streams = _streams(out)
    assert [s["codec_type"] for s in streams] == ["video", "audio", "audio", "data"]
    assert [_tag(s, "language") for s in streams[1:3]] == ["eng", "fra"]
    assert [s["disposition"]["default"] for s in streams[1:3]] == [1, 0]
    # The timecode track is restamped to the clip's first frame.
    first = report.segments[0].delivered_first
    assert _tag(streams[3], "timecode") == first.timecode
    # The subtitles are not in the clip: named, with the reason, never dropped silently.
    assert [(d.index, d.kind, d.codec) for d in report.dropped_streams] == [
        (3, "subtitle", "mov_text")
    ]
    assert "subtitle" in report.dropped_streams[0].reason


@pytest.mark.parametrize("accuracy", [Accuracy.EXACT, Accuracy.FAST])
def test_eight_titled_tracks_in_matroska_keep_language_and_title(
    folder: Path, tmp_path: Path, accuracy: Accuracy
) -> None:
    source = _source(folder, 8, ".mkv", subtitles=False)
    out = tmp_path / "clip.mkv"
    report = engine.cut(source, out, CutSpec(segments=(Segment(1.3, 3.6),), accuracy=accuracy))
    audio = [s for s in _streams(out) if s["codec_type"] == "audio"]
    assert [_tag(s, "language") for s in audio] == LANGUAGES
    assert [_tag(s, "title") for s in audio] == [f"Track {lang}" for lang in LANGUAGES]
    source_audio = [s for s in _streams(source) if s["codec_type"] == "audio"]
    assert [s["disposition"] for s in audio] == [s["disposition"] for s in source_audio]
    assert report.dropped_streams == []
    assert report.verification.frame_count == report.frame_count


def test_several_segments_keep_the_metadata_too(folder: Path, tmp_path: Path) -> None:
    """Joined segments go through the concat filter, which carries no stream metadata."""
    source = _source(folder, 2, ".mp4", subtitles=True)
    out = tmp_path / "joined.mp4"
    spec = CutSpec(segments=(Segment(0.5, 1.5), Segment(3.0, 4.2)))
    engine.cut(source, out, spec)
    streams = _streams(out)
    assert [_tag(s, "language") for s in streams if s["codec_type"] == "audio"] == ["eng", "fra"]


def test_titles_an_mp4_cannot_hold_are_named(folder: Path, tmp_path: Path) -> None:
    source = _source(folder, 8, ".mkv", subtitles=False)
    out = tmp_path / "web.mp4"
    report = engine.cut(source, out, CutSpec(segments=(Segment(1.3, 3.6),), preset=Preset.MP4))
    titles = [line for line in report.not_kept if "title" in line]
    assert len(titles) == len(LANGUAGES)
    audio = [s for s in _streams(out) if s["codec_type"] == "audio"]
    assert [_tag(s, "language") for s in audio] == LANGUAGES


CHAPTERS = (
    ";FFMETADATA1\ntitle=Press conference\ncopyright=ACME News\n"
    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=2000\ntitle=Welcome\n"
    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=2000\nEND=3500\ntitle=Questions\n"
    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=3500\nEND=5000\ntitle=Close\n"
)


def _chaptered(folder: Path, extension: str) -> Path:
    path = folder / f"chapters{extension}"
    if not path.exists():
        meta = folder / "chapters.ffmeta"
        meta.write_text(CHAPTERS)
        _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=128x72:rate=25:duration=5",
                "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=5", "-i", str(meta),
                "-map", "0:v", "-map", "1:a", "-map_metadata", "2", "-map_chapters", "2",
                "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac",
                str(path))  # fmt: skip
    return path


def _chapters(path: Path) -> list[tuple[float, float, str]]:
    data = fc.ffprobe_json(path, "-show_chapters")
    return [
        (round(float(c["start_time"]), 3), round(float(c["end_time"]), 3), c["tags"]["title"])
        for c in data["chapters"]
    ]


@pytest.mark.parametrize("extension", [".mp4", ".mkv"])
@pytest.mark.parametrize("accuracy", [Accuracy.EXACT, Accuracy.FAST])
def test_chapters_inside_the_range_are_re_timed_and_tags_kept(
    folder: Path, tmp_path: Path, extension: str, accuracy: Accuracy
) -> None:
    source = _chaptered(folder, extension)
    out = tmp_path / f"clip{extension}"
    report = engine.cut(source, out, CutSpec(segments=(Segment(1.2, 4.0),), accuracy=accuracy))
    # Chapter times count on the container's clock; the first frame may sit after its zero
    # (Matroska with AAC priming: 21 ms), and the clip starts at its delivered first frame.
    zero = float(fc.frame_timestamps(source)[0])
    start = zero + report.segments[0].delivered_first.seconds
    end = start + report.duration_seconds
    expected = [
        (round(max(a, start) - start, 3), round(min(b, end) - start, 3), title)
        for a, b, title in [(0, 2, "Welcome"), (2, 3.5, "Questions"), (3.5, 5, "Close")]
        if min(b, end) > max(a, start)
    ]
    got = _chapters(out)
    assert [t for _, _, t in got] == [t for _, _, t in expected]
    for (a, b, _), (x, y, _) in zip(got, expected, strict=True):
        assert abs(a - x) <= 0.002 and abs(b - y) <= 0.002, (got, expected)
    tags = {k.lower(): v for k, v in fc.ffprobe_json(out, "-show_format")["format"]["tags"].items()}
    assert tags["title"] == "Press conference" and tags["copyright"] == "ACME News"
    assert report.dropped_streams == []


def test_chapters_of_joined_segments_follow_each_segment(folder: Path, tmp_path: Path) -> None:
    source = _chaptered(folder, ".mkv")
    out = tmp_path / "joined.mkv"
    spec = CutSpec(segments=(Segment(0.4, 1.0), Segment(3.0, 4.2)))
    engine.cut(source, out, spec)
    got = _chapters(out)
    zero = float(fc.frame_timestamps(source)[0])
    # 0.6 s of "Welcome", then the second part [3.0, 4.2) after it: "Questions" up to 3.5 s
    # on the container's clock, "Close" from there.
    assert [t for _, _, t in got] == ["Welcome", "Questions", "Close"]
    questions = 3.5 - (3.0 + zero)
    assert [round(b - a, 3) for a, b, _ in got] == pytest.approx(
        [0.6, questions, 1.2 - questions], abs=0.002
    )
    assert got[1][0] == pytest.approx(0.6, abs=0.002)
