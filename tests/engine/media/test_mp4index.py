"""The in-process MP4/MOV sample-table reader agrees with ffprobe's packet listing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from clipper import engine
from clipper.engine import verify
from clipper.engine.media.mp4index import read_tracks
from clipper.engine.report import Verification
from clipper.spec import Accuracy, CutSpec, Preset, Segment
from tests.fixtures.media import MediaLibrary

#: ffprobe prints times rounded to the microsecond.
PRINT_SLACK = 2e-6
LAST_SLACK = 1e-3


def _ffprobe_packets(path: Path) -> dict[int, list[dict[str, str]]]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_entries",
         "packet=stream_index,pts_time,duration_time,flags", f"file:{path}"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    by_stream: dict[int, list[dict[str, str]]] = {}
    for p in json.loads(out)["packets"]:
        by_stream.setdefault(int(p["stream_index"]), []).append(p)
    return by_stream


def _assert_agrees(path: Path) -> None:
    tracks = read_tracks(path)
    assert tracks is not None, f"{path.name}: reader gave up"
    packets = _ffprobe_packets(path)
    kinds = [t.handler for t in tracks]
    assert "vide" in kinds
    for index, track in enumerate(tracks):
        if track.handler not in ("vide", "soun"):
            continue
        listed = packets[index]
        assert len(track.pts_seconds) == len(listed), f"{path.name} stream {index}"
        pts = [float(p["pts_time"]) for p in listed]
        durations = [float(p["duration_time"]) for p in listed]
        assert track.pts_seconds == pytest.approx(pts, abs=PRINT_SLACK)
        if track.handler == "soun":  # video durations are not used (nor modelled at the end)
            assert track.durations_seconds[:-1] == pytest.approx(durations[:-1], abs=PRINT_SLACK)
            # The last one ends at the edit list's end, whose units (often ms) FFmpeg rounds
            # its own way: within 1 ms, far inside verification's one-audio-frame tolerance.
            assert track.durations_seconds[-1] == pytest.approx(durations[-1], abs=LAST_SLACK)
        assert track.first_is_sync == ("K" in listed[0]["flags"])


@pytest.mark.parametrize(
    "name", ["h264_mp4", "h264_faststart_mp4", "h264_df_minute_mp4", "hevc_open_mp4"]
)
def test_reader_matches_ffprobe_on_sources(media_library: MediaLibrary, name: str) -> None:
    _assert_agrees(media_library.get(name).path)


@pytest.mark.parametrize(
    ("name", "accuracy", "preset", "suffix"),
    [
        ("h264_mp4", Accuracy.FAST, Preset.ORIGINAL, ".mp4"),
        ("h264_mp4", Accuracy.EXACT, Preset.ORIGINAL, ".mp4"),
        ("h264_mov", Accuracy.EXACT, Preset.MP4, ".mp4"),
        ("hevc_closed_mp4", Accuracy.EXACT, Preset.ORIGINAL, ".mp4"),
        ("h264_mkv", Accuracy.EXACT, Preset.MP4, ".mp4"),
        ("hevc_open_mp4", Accuracy.FAST, Preset.ORIGINAL, ".mp4"),
    ],
)
def test_reader_matches_ffprobe_on_clips(
    media_library: MediaLibrary,
    tmp_path: Path,
    name: str,
    accuracy: Accuracy,
    preset: Preset,
    suffix: str,
) -> None:
    src = media_library.get(name).path
    out = tmp_path / f"clip{suffix}"
    spec = CutSpec(segments=(Segment(1.3, 3.1),), accuracy=accuracy, preset=preset)
    engine.cut(src, out, spec)
    _assert_agrees(out)


def test_reader_declines_what_it_does_not_model(
    media_library: MediaLibrary, tmp_path: Path
) -> None:
    src = media_library.get("h264_mp4").path
    # A copy starting mid-GOP: FFmpeg writes an edit list starting after the first frame.
    mid = tmp_path / "mid.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", "1.3", "-i", f"file:{src}", "-t", "1", "-c", "copy",
         f"file:{mid}"], check=True,
    )  # fmt: skip
    fragmented = tmp_path / "frag.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", f"file:{src}", "-c", "copy", "-movflags",
         "frag_keyframe+empty_moov", f"file:{fragmented}"], check=True,
    )  # fmt: skip
    assert read_tracks(mid) is None
    assert read_tracks(fragmented) is None
    assert read_tracks(media_library.get("h264_mkv").path) is None
    # PCM in MOV: FFmpeg groups constant-size samples by chunk, so its packets are not ours.
    assert read_tracks(media_library.get("h264_mov").path) is None


def test_verification_is_the_same_either_way(
    media_library: MediaLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = media_library.get("h264_mp4").path
    out = tmp_path / "clip.mp4"
    spec = CutSpec(segments=(Segment(1.3, 3.1),), accuracy=Accuracy.FAST)
    report = engine.cut(src, out, spec)
    rate = engine.probe(src).frame_rate

    def check() -> Verification:
        expected = verify.Expected(
            frames=report.frame_count, frame_rate=rate, audio=True, decode_intervals=[]
        )
        return verify.verify_output(out, expected)

    in_process = check()
    monkeypatch.setattr(verify.facts, "packets_in_process", lambda path: None)
    by_ffprobe = check()
    assert in_process.frame_count == by_ffprobe.frame_count == report.frame_count
    for name in ("first_frame_seconds", "last_frame_seconds", "duration_seconds"):
        assert getattr(in_process, name) == pytest.approx(getattr(by_ffprobe, name), abs=2e-6)
    for name in ("audio_duration_seconds", "audio_video_delta_seconds"):
        assert getattr(in_process, name) == pytest.approx(getattr(by_ffprobe, name), abs=1e-3)
