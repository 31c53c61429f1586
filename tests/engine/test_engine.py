"""Engine facade: range resolution, the report, failure hygiene (accuracy matrix: test_accuracy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipper import engine
from clipper.errors import BadRequest, ClipperError, Timeout
from clipper.spec import Accuracy, CutSpec, Segment, TimecodeOrigin
from tests.fixtures.media import MediaLibrary, MediaSample


def _spec(*segments: tuple[object, object], **kw: object) -> CutSpec:
    return CutSpec(segments=tuple(Segment(a, b) for a, b in segments), **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def mov(media_library: MediaLibrary) -> tuple[MediaSample, engine.MediaInfo]:
    """The 25 fps MOV (timecode 10:00:00:00, 4 s = 100 frames) and its probe."""
    s = media_library.get("h264_mov")
    return s, engine.probe(s.path)


def test_resolve_seconds_and_smpte(mov: tuple[MediaSample, engine.MediaInfo]) -> None:
    _, media = mov
    # 25 fps: 1.0 s is frame 25 exactly; 1.01 s selects the next frame, 26.
    assert engine.resolve_ranges(media, _spec((1.0, 2.01))) == [engine.FrameRange(25, 51)]
    # SMPTE from the embedded 10:00:00:00, or from zero.
    tc = _spec(("10:00:01:05", "10:00:02:00"))
    assert engine.resolve_ranges(media, tc) == [engine.FrameRange(30, 50)]
    zero = _spec(("00:00:01:05", "00:00:02:00"), timecode_origin=TimecodeOrigin.ZERO)
    assert engine.resolve_ranges(media, zero) == [engine.FrameRange(30, 50)]
    assert engine.resolve_ranges(media, CutSpec()) == [engine.FrameRange(0, 100)]


@pytest.mark.parametrize(
    ("segments", "field"),
    [
        (((1.0, 9.0),), "end"),
        (((5.0, None),), "start"),
        (((2.0, 1.0),), "end"),
        (((2.0, 2.0),), "end"),
        (((0.0, 1.0), (1.0, 9.0)), "segments[1].end"),
        (((0.0, 1.0), (3.0, 2.0)), "segments[1].end"),
        (((0.0, 1.0), ("09:00:00:00", 2.0)), "segments[1].start"),
    ],
)
def test_bad_ranges_name_the_field(
    mov: tuple[MediaSample, engine.MediaInfo],
    segments: tuple[tuple[object, object], ...],
    field: str,
) -> None:
    with pytest.raises(BadRequest) as err:
        engine.resolve_ranges(mov[1], _spec(*segments))
    assert err.value.field == field


def test_end_a_hair_past_the_duration_is_the_end(mov: tuple[MediaSample, engine.MediaInfo]) -> None:
    # A client sending the container's duration (4.02 s: audio runs a little longer) means
    # "to the end", not one frame past it.
    assert engine.resolve_ranges(mov[1], _spec((3.0, 4.02))) == [engine.FrameRange(75, 100)]


def test_report_describes_an_exact_smart_cut(
    mov: tuple[MediaSample, engine.MediaInfo], tmp_path: Path
) -> None:
    s, media = mov
    out = tmp_path / "clip.mov"
    report = engine.cut(s.path, out, _spec((0.5, 3.5)), media=media)
    seg = report.segments[0]
    assert (seg.requested_in.frame, seg.requested_out.frame) == (13, 88)
    assert (seg.delivered_first.frame, seg.delivered_last.frame) == (13, 87)
    assert (
        seg.requested_in.timecode == "10:00:00:13" and seg.delivered_last.timecode == "10:00:03:12"
    )
    assert not seg.snapped and seg.snap_in_ms == 0 and seg.snap_out_ms == 0
    # GOP 30: frames 30..59 and 60..89 are whole GOPs, but 88 ends inside the second one.
    assert seg.strategy == "smart" and seg.frames_copied == 30 and seg.frames_reencoded == 45
    assert report.frame_count == 75 == report.verification.frame_count
    assert report.duration_seconds == pytest.approx(3.0)
    assert report.verification.passed and report.verification.decode_errors == 0
    assert report.model_dump(mode="json")["strategy"] == "smart"


def test_fast_reports_where_it_really_starts(
    mov: tuple[MediaSample, engine.MediaInfo], tmp_path: Path
) -> None:
    s, media = mov
    report = engine.cut(
        s.path, tmp_path / "f.mov", _spec((1.5, 3.0), accuracy=Accuracy.FAST), media=media
    )
    seg = report.segments[0]
    assert seg.delivered_first.frame == 30  # the keyframe before frame 38
    assert seg.snapped and seg.snap_in_ms == pytest.approx(-8 * 40)
    assert seg.delivered_last.frame >= 74 and seg.frames_reencoded == 0
    assert seg.fallback_reason


def test_failed_cut_leaves_nothing(media_library: MediaLibrary, tmp_path: Path) -> None:
    # Probes fine, but the media data is cut short: decoding or verification must fail.
    broken = media_library.get("truncated_faststart_mp4")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(ClipperError):
        engine.cut(broken.path, out_dir / "clip.mp4", _spec((0.0, 4.5)))
    assert list(out_dir.iterdir()) == []


def test_timeout_leaves_nothing(mov: tuple[MediaSample, engine.MediaInfo], tmp_path: Path) -> None:
    s, media = mov
    config = engine.EngineConfig(timeout_seconds=0.001)
    with pytest.raises(Timeout):
        engine.cut(
            s.path,
            tmp_path / "t.mov",
            _spec((0.5, 3.5)),
            media=media,
            context=engine.RunContext(config),
        )
    assert list(tmp_path.iterdir()) == []


def test_existing_output_survives_a_failed_cut(
    mov: tuple[MediaSample, engine.MediaInfo], tmp_path: Path
) -> None:
    s, media = mov
    out = tmp_path / "keep.mov"
    out.write_bytes(b"previous")
    with pytest.raises(BadRequest):
        engine.cut(s.path, out, _spec((3.0, 2.0)), media=media)
    assert out.read_bytes() == b"previous"


def test_work_dir_is_used_and_cleaned(
    mov: tuple[MediaSample, engine.MediaInfo], tmp_path: Path
) -> None:
    s, media = mov
    work = tmp_path / "work"
    config = engine.EngineConfig(work_dir=work)
    report = engine.cut(
        s.path,
        tmp_path / "w.mov",
        _spec((0.5, 1.5)),
        media=media,
        context=engine.RunContext(config),
    )
    assert report.frame_count == 25
    assert list(work.iterdir()) == []


def _extradata(path: Path) -> str:
    import json
    import subprocess

    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=extradata", "-show_data", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return str(json.loads(out)["streams"][0]["extradata"])


def test_smart_cut_keeps_the_sources_parameter_sets(
    media_h264_mp4: MediaSample, tmp_path: Path
) -> None:
    """The joined MP4 stores the head's SPS/PPS; reusing the source's x264 settings makes
    them the source's own, so a decoder that ignores in-band headers still decodes the
    copied middle."""
    media = engine.probe(media_h264_mp4.path)
    assert media.x264_options and "bframes=3" in media.x264_options
    out = tmp_path / "clip.mp4"
    report = engine.cut(media_h264_mp4.path, out, _spec((0.5, 4.5)), media=media)
    assert report.strategy == "smart" and report.frames_reencoded > 0
    assert _extradata(out) == _extradata(media_h264_mp4.path)


def test_x264_settings_subset() -> None:
    from clipper.engine.ffmpeg.encoders import x264_params

    sei = "cabac=1 ref=3 deblock=1:0:0 psy_rd=1.00:0.15 bframes=3 b_pyramid=2 crf=18.0 keyint=37"
    assert x264_params(sei) == {
        "cabac": "1",
        "ref": "3",
        "bframes": "3",
        "b-pyramid": "2",
        "psy-rd": "1.00,0.15",
        "crf": "18.0",
    }


def test_concat_list_moves_lead_in_frames_to_the_previous_part(tmp_path: Path) -> None:
    from fractions import Fraction

    from clipper.engine.ffmpeg.argv import concat_list

    text = concat_list([(tmp_path / "a.ts", 37, 0), (tmp_path / "b.ts", 120, 3)], Fraction(25))
    # b.ts starts (by its first packet) 3 frames after its first shown frame.
    assert text.splitlines()[1:] == [
        f"file 'file:{tmp_path}/a.ts'",
        "duration 1.600000",  # 40 frames
        f"file 'file:{tmp_path}/b.ts'",
        "duration 4.680000",  # 117 frames
    ]


def test_cra_becomes_bla(media_hevc_open_mp4: MediaSample, tmp_path: Path) -> None:
    import subprocess

    from clipper.engine.ffmpeg.splice import cra_to_bla

    assert media_hevc_open_mp4.gop_frames and media_hevc_open_mp4.rate
    key = media_hevc_open_mp4.gop_frames / media_hevc_open_mp4.rate  # the second keyframe
    part = tmp_path / "part.ts"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", f"{float(key) - 0.01:.6f}", "-i",
         str(media_hevc_open_mp4.path), "-map", "0:v", "-c", "copy", "-copypriorss", "0",
         "-frames:v", "5", "-f", "mpegts", str(part)],
        check=True,
    )  # fmt: skip

    def first_slice_type() -> int:
        trace = subprocess.run(
            ["ffmpeg", "-v", "verbose", "-i", str(part), "-c", "copy", "-frames:v", "1",
             "-bsf:v", "trace_headers", "-f", "null", "-"],
            capture_output=True, text=True, check=True,
        ).stderr  # fmt: skip
        types = [
            int(line.rsplit("=", 1)[1]) for line in trace.splitlines() if "nal_unit_type" in line
        ]
        return next(t for t in types if t < 32)  # the first slice NAL unit (VCL)

    assert first_slice_type() == 21  # CRA
    assert cra_to_bla(part) >= 1
    assert first_slice_type() == 16  # BLA_W_LP


def test_packet_intervals_guessed_from_plain_seconds_only() -> None:
    from clipper.engine.plan.cutpoints import guessed_intervals

    assert guessed_intervals(_spec(("00:00:01:00", 3.0))) is None  # needs the frame rate
    assert guessed_intervals(_spec(("1:02.5", 70))) is None  # clock times: not guessed
    got = guessed_intervals(_spec((2, "30.5")))
    assert got is not None
    # In-point: from 2 s, 10 s on (the next keyframe); out-point: 30.5 s to 1 s past it.
    assert got == [(2.0, pytest.approx(12.1)), (30.5, pytest.approx(31.6))]
    assert guessed_intervals(CutSpec()) == [(0.0, pytest.approx(10.1))]
