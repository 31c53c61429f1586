"""The in-process MP4/MOV probe gives ffprobe's answers, or declines.

`fast` cuts of local MP4/MOV sources take their MediaInfo and packets from
clipper/engine/media/mp4probe.py instead of ffprobe; these tests hold every field a copy uses,
and the
plans made from the packets, to what ffprobe says about the same file.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from clipper import engine
from clipper.engine.ffmpeg import runner as ffmpeg
from clipper.engine.media import ffprobe as probing
from clipper.engine.media.model import MediaInfo
from clipper.engine.media.mp4probe import open_movie
from clipper.engine.plan.cutpoints import (
    abs_time,
    direct_copy_seconds,
    packet_intervals,
    plan_segments,
)
from clipper.engine.plan.parts import FrameRange
from clipper.spec import Accuracy, CutSpec, Segment
from tests.fixtures.media import MediaLibrary

SOURCES = [
    "h264_mp4",
    "h264_faststart_mp4",
    "h264_df_minute_mp4",
    "h264_5994_mp4",
    "h264_nosei_mp4",
    "h264_mov",
    "hevc_closed_mp4",
    "hevc_open_mp4",
    "h264_irregular_mp4",
]
FAST = CutSpec(segments=(Segment(1.0, 2.0),), accuracy=Accuracy.FAST)


def _assert_same_media(mine: MediaInfo, theirs: MediaInfo) -> None:
    """Every field a stream copy uses (the rest, for re-encoding, is left unset)."""
    for name in (
        "container",
        "format_name",
        "frame_count",
        "size_bytes",
        "start_timecode",
        "frame_rate",
        "is_mp4",
    ):
        assert getattr(mine, name) == getattr(theirs, name), name
    assert (mine.major_brand or "").strip() == (theirs.major_brand or "").strip()
    assert mine.duration_seconds == pytest.approx(theirs.duration_seconds, abs=1e-9)
    assert mine.format_start_seconds == pytest.approx(theirs.format_start_seconds, abs=2e-6)
    # has_b_frames is left out: ours is the reordering seen in the first samples, FFmpeg's
    # the decoder's guess (x264 at -bf 2 shows 1 frame of reordering, FFmpeg says 2).
    for name in ("index", "codec", "width", "height", "time_base", "rotation", "language"):
        assert getattr(mine.video, name) == getattr(theirs.video, name), f"video.{name}"
    assert mine.video.disposition == theirs.video.disposition
    assert [(o.index, o.kind, o.codec) for o in mine.others] == [
        (o.index, o.kind, o.codec) for o in theirs.others
    ]
    assert mine.video.start_seconds == pytest.approx(theirs.video.start_seconds, abs=2e-6)
    assert [
        (a.index, a.codec, a.sample_rate, a.channels, a.language, a.disposition)
        for a in mine.audio
    ] == [
        (a.index, a.codec, a.sample_rate, a.channels, a.language, a.disposition)
        for a in theirs.audio
    ]


def _cut_points(media: MediaInfo) -> list[FrameRange]:
    """In/out pairs at the start, on and beside keyframes, mid-GOP and at the very end."""
    n = media.frame_count
    picks = [(0, 1), (0, n), (1, n - 1), (n // 3, n // 2), (n // 2, n - 2), (n - 1, n)]
    picks += [(k, min(n, k + 7)) for k in (36, 37, 38, 25, 30, 31) if k < n - 1]
    return [FrameRange(a, b) for a, b in picks if 0 <= a < b <= n]


def _assert_same_plans(path: Path, media: MediaInfo) -> None:
    movie = open_movie(path)
    assert movie is not None
    for r in _cut_points(media):
        intervals = packet_intervals(media, [r])
        listed = probing.read_packets(path, media, intervals)
        mine = movie.packets(intervals)
        # ffprobe's listing is inside ours, packet for packet (pts, dts, keyframe flag).
        assert set(listed) <= set(mine), f"{r}: ffprobe listed packets we did not"
        assert any(p.keyframe and p.pts <= abs_time(media, r.start) + 1e-6 for p in listed), (
            f"{r}: ffprobe's listing misses the keyframe before the in-point"
        )
        theirs_plan = plan_segments(media, FAST, [r], listed)
        mine_plan = plan_segments(media, FAST, [r], mine)
        assert mine_plan[0] == theirs_plan[0], f"{r}: plans differ"
        assert direct_copy_seconds(media, mine_plan[0][0], mine) == pytest.approx(
            direct_copy_seconds(media, theirs_plan[0][0], listed)
        ), f"{r}: the copy's -t differs"


@pytest.mark.parametrize("name", SOURCES)
def test_probe_agrees_with_ffprobe(media_library: MediaLibrary, name: str) -> None:
    path = media_library.get(name).path
    movie = open_movie(path)
    assert movie is not None, f"{name}: the in-process probe gave up on an ordinary file"
    theirs = probing.probe(path, encoder_settings=False)
    _assert_same_media(movie.media, theirs)
    _assert_same_plans(path, theirs)


def _make(out: Path, *args: str, seconds: str = "3", rate: str = "30000/1001") -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate={rate}:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=sample_rate=44100:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "20", *args, str(out)],
        check=True, timeout=120,
    )  # fmt: skip
    return out


VARIANTS = {
    "no edit list": ("-use_editlist", "0"),
    "stereo 44.1 kHz": ("-ac", "2", "-c:a", "aac"),
    "5.1 AAC": ("-ac", "6", "-c:a", "aac"),
    "MP3 audio": ("-c:a", "libmp3lame"),
    "PCM audio (MOV)": ("-c:a", "pcm_s16le", "-f", "mov"),
    "AAC audio (MOV)": ("-c:a", "aac", "-f", "mov"),
    "no audio": ("-an",),
    "delayed start": ("-output_ts_offset", "1.5"),
    "late timecode": ("-timecode", "23:59:59;28"),
    "25 fps timecode": ("-r", "25", "-timecode", "00:59:59:24"),
    "negative cts": ("-movflags", "negative_cts_offsets"),
    "timecode tag, no tmcd": (
        "-write_tmcd",
        "0",
        "-movflags",
        "use_metadata_tags",
        "-metadata",
        "timecode=00:10:00;00",
    ),
}


#: Stream copies that set what an encoder cannot: a display matrix (phones record portrait
#: video as landscape plus a rotation), track languages, a disabled track.
REMUXES = {
    "rotated 90": ("-metadata:s:v:0", "rotate=90"),
    "rotated 270, French audio": (
        "-metadata:s:v:0", "rotate=270", "-metadata:s:a:0", "language=fra",
    ),
    "rotated 180 (MOV, PCM)": ("-metadata:s:v:0", "rotate=180", "-f", "mov"),
    "audio not default": ("-disposition:a:0", "0"),
}  # fmt: skip


@pytest.mark.parametrize("remux", sorted(REMUXES))
def test_rotation_language_and_disposition_agree(tmp_path: Path, remux: str) -> None:
    pcm = ("-c:a", "pcm_s16le", "-f", "mov") if "PCM" in remux else ()
    plain = _make(tmp_path / "plain.mp4", *pcm)
    path = tmp_path / "v.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", f"file:{plain}", "-c", "copy",
         *REMUXES[remux], f"file:{path}"], check=True, timeout=60,
    )  # fmt: skip
    movie = open_movie(path)
    assert movie is not None, f"{remux}: declined"
    theirs = probing.probe(path, encoder_settings=False)
    _assert_same_media(movie.media, theirs)
    if remux.startswith("rotated"):
        assert movie.media.video.rotation != 0


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variants_agree_or_decline(tmp_path: Path, variant: str) -> None:
    path = _make(tmp_path / "v.mp4", *VARIANTS[variant])
    movie = open_movie(path)
    theirs = probing.probe(path, encoder_settings=False)
    if movie is None:
        declined = ("negative cts", "MP3 audio", "timecode tag, no tmcd")
        assert variant in declined, f"{variant}: declined an ordinary file"
        return
    _assert_same_media(movie.media, theirs)
    _assert_same_plans(path, theirs)


def test_declines_what_it_does_not_model(media_library: MediaLibrary, tmp_path: Path) -> None:
    for name in ("h264_mkv", "h264_ts", "not_media", "truncated_mp4"):
        assert open_movie(media_library.get(name).path) is None, name
    src = media_library.get("h264_mp4").path
    fragmented = tmp_path / "frag.mp4"
    subtitled = tmp_path / "subs.mp4"
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", f"file:{src}", "-c", "copy", "-movflags",
         "frag_keyframe+empty_moov", f"file:{fragmented}"], check=True,
    )  # fmt: skip
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", f"file:{src}", "-i", f"file:{srt}", "-map", "0:v",
         "-map", "0:a", "-map", "1", "-c", "copy", "-c:s", "mov_text", f"file:{subtitled}"],
        check=True,
    )  # fmt: skip
    assert open_movie(fragmented) is None
    assert open_movie(subtitled) is None
    assert open_movie(tmp_path / "missing.mp4") is None


def test_fast_cut_of_a_local_mp4_runs_one_process(
    media_library: MediaLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The point of it all: a fast cut is the copy itself, no ffprobe before or after."""
    calls: list[str] = []
    real_run = ffmpeg.run

    def counting_run(argv: list[str], *args: object, **kwargs: object) -> object:
        calls.append(Path(argv[0]).name)
        return real_run(argv, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ffmpeg, "run", counting_run)
    src = media_library.get("h264_mp4").path
    report = engine.cut(src, tmp_path / "clip.mp4", FAST)
    assert calls == ["ffmpeg"]
    assert report.strategy == "copy"
    assert report.verification.frame_count == report.frame_count
