"""The engine's accuracy matrix (issue 2, item 8): sources x cases, judged by the source's frames.

Expected frames come from tests/framecheck.py (timestamps ffprobe reads from the source and the
product rule), never from clipper.timecode or the engine's report. Tolerances:
- re-encoded frames must match their source frame at >= MIN_PSNR_DB and strictly better than
  the neighbouring source frames (measured on these sources: the right frame >= 43 dB, a
  neighbour <= 28 dB);
- audio and video decoded durations differ by at most one audio frame + 1 ms, the audio
  starts within one audio frame of the video, and every source beep (a 40 ms tone burst at
  each whole second of the test media) lands within one audio frame + 1 ms of where its
  source time maps in the clip (measured: <= 1.2 ms, MKV/Opus ~6 ms).
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from clipper import engine
from clipper.errors import Canceled, ClipperError, InvalidMedia
from clipper.spec import Accuracy, CutSpec, Preset, Segment, TimecodeOrigin
from tests import framecheck as fc
from tests.fixtures.media import VALID_SOURCES, MediaLibrary, MediaSample

MIN_PSNR_DB = 35.0  # measured: right frame >= 43 dB, a neighbour <= 28 dB
_MS = Fraction(1, 1000)


@dataclass(frozen=True)
class Case:
    """Requested segments (as a user would write them) and the frames they must select."""

    segments: tuple[Segment, ...]
    expected: tuple[tuple[int, int], ...]  # [first, end) source frame indices per segment
    origin: TimecodeOrigin = TimecodeOrigin.EMBEDDED


def _decimal(t: Fraction) -> float:
    """A float a person could type that selects the same frame as the exact time `t`.

    Exact decimals (25 fps: 1.8) are kept as they are, so the engine must not trip over the
    double nearest to them; other times are rounded down to the microsecond, which lands
    between the previous frame and `t`.
    """
    f = float(t)
    if fc.as_fraction(f) == t:
        return f
    return math.floor(t * 1_000_000) / 1_000_000


def _mid(rel: Sequence[Fraction], i: int) -> float:
    """A time halfway between frames i-1 and i: selects frame i unambiguously."""
    if i == 0:
        return 0.0
    if i >= len(rel):
        return float(rel[-1] + (rel[-1] - rel[-2]) / 2)
    return round(float((rel[i - 1] + rel[i]) / 2), 6)


def _on_frame(rel: Sequence[Fraction], near: int) -> float:
    """The typed-in time of a frame at or after `near`, preferring an exact decimal whose
    nearest double is above it (the trap for code that compares binary floats)."""
    for i in range(near, min(near + 8, len(rel))):
        t = rel[i]
        if fc.as_fraction(float(t)) == t and Fraction(float(t)) > t:
            return float(t)
    return _decimal(rel[near])


def _seconds_case(rel: Sequence[Fraction], *ranges: tuple[float | None, float | None]) -> Case:
    segs = tuple(Segment(a, b) for a, b in ranges)
    exp = tuple(fc.expected_range(list(rel), a, b, origin=Fraction(0)) for a, b in ranges)
    return Case(segs, exp)


def _cases(s: MediaSample) -> dict[str, Case]:
    """The generic cases for one source, placed by its own keyframes."""
    vf = fc.video_frames(s.path)
    rel, kf, n = vf.relative(), vf.keyframes, vf.count
    k1, k2 = kf[1], kf[2]
    k3 = kf[3] if len(kf) > 3 else n
    mid_gop = (k1 + k2) // 2
    return {
        "keyframe_in": _seconds_case(rel, (_decimal(rel[k1]), _on_frame(rel, k3 - 4))),
        "inside_one_gop": _seconds_case(rel, (_mid(rel, k1 + 2), _mid(rel, k2 - 3))),
        "one_frame": _seconds_case(rel, (_mid(rel, mid_gop), _mid(rel, mid_gop + 1))),
        "very_start": _seconds_case(rel, (None, _mid(rel, k2 + 3))),
        "very_end": _seconds_case(rel, (_mid(rel, k1 + 3), None)),
        "whole_file": Case((Segment(),), ((0, n),)),
        "multi_segment": _seconds_case(
            rel, (_mid(rel, 3), _mid(rel, k2 + 2)), (_mid(rel, k2 + 6), _mid(rel, n - 4))
        ),
    }


def _smpte_case(s: MediaSample, origin: TimecodeOrigin, first: int, end: int) -> Case:
    """SMPTE in/out labels naming source frames [first, end) directly."""
    assert s.rate is not None and s.start_timecode is not None
    drop = s.drop_frame
    base = (
        fc.smpte_frame_number(s.start_timecode, s.rate) if origin is TimecodeOrigin.EMBEDDED else 0
    )
    a = fc.smpte_label(base + first, s.rate, drop)
    b = fc.smpte_label(base + end, s.rate, drop)
    return Case((Segment(a, b),), ((first, end),), origin)


# --- running a cut and judging it ----------------------------------------------------------


def _cut(
    s: MediaSample, tmp: Path, case: Case, accuracy: Accuracy, preset: Preset
) -> tuple[Path, Any]:
    spec = CutSpec(
        segments=case.segments, accuracy=accuracy, preset=preset, timecode_origin=case.origin
    )
    media = engine.probe(s.path)
    out = tmp / f"clip{engine.output_extension(media, preset)}"
    report = engine.cut(s.path, out, spec, media=media)
    assert out.exists(), "cut returned without writing the output"
    return out, report


def _expected_indices(case: Case) -> list[int]:
    return [i for a, b in case.expected for i in range(a, b)]


def _assert_frames_match(src: Path, out: Path, expected: list[int]) -> None:
    """Every output frame is the expected source frame, better than its neighbours."""
    src_gray, out_gray = fc.gray_frames(src), fc.gray_frames(out)
    assert len(out_gray) == len(expected), (
        f"decoded {len(out_gray)} frames, expected {len(expected)}"
    )
    for pos, want in enumerate(expected):
        score = fc.psnr(out_gray[pos], src_gray[want])
        neighbours = [
            fc.psnr(out_gray[pos], src_gray[j])
            for j in (want - 1, want + 1)
            if 0 <= j < len(src_gray)
        ]
        assert score >= MIN_PSNR_DB, f"output frame {pos} vs source {want}: {score:.1f} dB"
        assert all(score > other for other in neighbours), (
            f"output frame {pos} looks more like a neighbour of source frame {want}: "
            f"{score:.1f} dB vs {[round(x, 1) for x in neighbours]}"
        )


def _assert_copied_frames_identical(src: Path, out: Path, case: Case, report: Any) -> None:
    """A segment's reported copied frames are bit-identical to the source's decoded frames."""
    src_h, out_h = fc.decoded_frame_hashes(src), fc.decoded_frame_hashes(out)
    kf = fc.video_frames(src).keyframes
    pos = 0
    for (a, b), seg in zip(case.expected, report.segments, strict=True):
        if seg.frames_copied:
            # Copying can only start on a keyframe: the first one at or after the in-point.
            k_in = next(k for k in kf if k >= a)
            lo = pos + (k_in - a)
            copied = range(lo, lo + seg.frames_copied)
            bad = [p for p in copied if out_h[p] != src_h[a + p - pos]]
            assert not bad, f"reported copied, but not bit-identical: output frames {bad[:5]}"
        pos += b - a


def _assert_av_agree(src: Path, out: Path, ranges: list[tuple[int, int]]) -> None:
    """Audio as long as the video, starting with it, and in sync: each beep of the source
    lands where its source time maps in the clip (tolerance: one audio frame + 1 ms)."""
    d = fc.stream_durations(out)
    assert d.audio_s is not None and d.audio_frame_s is not None and d.audio_start_s is not None
    tol = d.audio_frame_s + _MS
    assert abs(d.audio_s - d.video_s) <= tol, (
        f"audio {float(d.audio_s):.4f} s vs video {float(d.video_s):.4f} s"
    )
    assert abs(d.audio_start_s - d.video_start_s) <= tol
    want, got = fc.expected_beeps(src, ranges), fc.beep_onsets(out)
    for t in want:
        near = min((abs(g - t) for g in got), default=None)
        assert near is not None and near <= tol, (
            f"beep expected at {float(t):.4f} s, found {[round(float(g), 4) for g in got]}"
        )
    # Beeps heard where none belongs (audio from the wrong range), away from segment edges.
    rel = fc.video_frames(src).relative()
    step = rel[1] - rel[0]
    edges, pos = [Fraction(0)], Fraction(0)
    for a, b in ranges:
        pos += rel[b - 1] + step - rel[a]
        edges.append(pos)
    margin = Fraction(1, 20) + tol
    for g in got:
        if all(abs(g - e) > margin for e in edges):
            assert any(abs(g - t) <= tol for t in want), f"unexpected beep at {float(g):.4f} s"


def _judge_exact(s: MediaSample, out: Path, case: Case, report: Any, preset: Preset) -> None:
    expected = _expected_indices(case)
    assert report.frame_count == len(expected)
    assert [(g.delivered_first.frame, g.delivered_last.frame + 1) for g in report.segments] == [
        (a, b) for a, b in case.expected
    ]
    _assert_frames_match(s.path, out, expected)
    _assert_copied_frames_identical(s.path, out, case, report)
    assert fc.decode_errors(out) == ""
    _assert_av_agree(s.path, out, list(case.expected))
    assert report.verification.passed
    src_codecs, out_codecs = fc.stream_codecs(s.path), fc.stream_codecs(out)
    if preset is Preset.ORIGINAL:
        assert fc.container_format(out) == fc.container_format(s.path)
        assert out_codecs["video"] == src_codecs["video"]
        assert out_codecs["audio"] == src_codecs["audio"]
    else:
        assert fc.container_format(out).startswith("mov,mp4")
        assert out.suffix == ".mp4"
        assert (out_codecs["video"], out_codecs["audio"]) == ("h264", "aac")
    if s.open_gop and case.expected != ((0, fc.video_frames(s.path).count),):
        for seg in report.segments:
            assert seg.strategy == "reencode" and seg.fallback_reason, (
                "an open-GOP source must fall back to a full re-encode, with a reason"
            )


# --- the matrix ----------------------------------------------------------------------------

GENERIC = (
    "keyframe_in",
    "inside_one_gop",
    "one_frame",
    "very_start",
    "very_end",
    "whole_file",
    "multi_segment",
)


# The faststart sample holds the same stream as h264_mp4: only a couple of cases for it.
EXACT_MATRIX = [
    (src, case) for src in VALID_SOURCES if src != "h264_faststart_mp4" for case in GENERIC
] + [("h264_faststart_mp4", "keyframe_in"), ("h264_faststart_mp4", "very_start")]


@pytest.mark.parametrize(("source", "case_name"), EXACT_MATRIX)
def test_exact_original(
    media_library: MediaLibrary, tmp_path: Path, source: str, case_name: str
) -> None:
    s = media_library.get(source)
    case = _cases(s)[case_name]
    out, report = _cut(s, tmp_path, case, Accuracy.EXACT, Preset.ORIGINAL)
    _judge_exact(s, out, case, report, Preset.ORIGINAL)
    if s.open_gop:
        return
    # Closed GOPs: keyframe-aligned ends are copied, never re-encoded (PRODUCT.md).
    if case_name == "whole_file":
        assert report.strategy == "copy" and report.frames_reencoded == 0
    if case_name in ("keyframe_in", "very_start"):
        assert report.frames_copied > 0
        first = case.expected[0][0]
        head = fc.decoded_frame_hashes(out)[0]
        assert head == fc.decoded_frame_hashes(s.path)[first], "head on a keyframe re-encoded"
    if case_name == "multi_segment" and s.gop_frames:
        assert report.strategy == "smart" and report.frames_copied > 0
        assert report.frames_reencoded > 0
    if report.frames_copied and report.frames_reencoded and s.container in ("mp4", "mov"):
        _assert_no_inband_dependency(out, tmp_path)


SMPTE_CASES: list[tuple[str, TimecodeOrigin, int, int]] = [
    ("h264_mp4", TimecodeOrigin.EMBEDDED, 40, 100),  # drop-frame labels from 01:00:00;00
    ("h264_mp4", TimecodeOrigin.ZERO, 37, 38),  # one frame, on a keyframe
    ("h264_faststart_mp4", TimecodeOrigin.EMBEDDED, 0, 74),
    ("h264_mov", TimecodeOrigin.EMBEDDED, 30, 95),  # from 10:00:00:00
    ("h264_mov", TimecodeOrigin.ZERO, 12, 61),
    # Labels 00:00:59;20 up to 00:01:01;14: across the dropped 00:01:00;00 and ;01.
    ("h264_df_minute_mp4", TimecodeOrigin.EMBEDDED, 50, 102),
    ("h264_df_minute_mp4", TimecodeOrigin.EMBEDDED, 60, 61),  # the frame 00:01:00;02
    # 59.94: labels 00:00:59;50 up to 00:01:00;34, across the dropped 00:01:00;00 to ;03.
    ("h264_5994_mp4", TimecodeOrigin.EMBEDDED, 10, 51),
    ("h264_5994_mp4", TimecodeOrigin.EMBEDDED, 20, 21),  # the frame 00:01:00;04
]


@pytest.mark.parametrize(("source", "origin", "first", "end"), SMPTE_CASES)
def test_exact_smpte(
    media_library: MediaLibrary,
    tmp_path: Path,
    source: str,
    origin: TimecodeOrigin,
    first: int,
    end: int,
) -> None:
    s = media_library.get(source)
    case = _smpte_case(s, origin, first, end)
    out, report = _cut(s, tmp_path, case, Accuracy.EXACT, Preset.ORIGINAL)
    _judge_exact(s, out, case, report, Preset.ORIGINAL)
    if origin is TimecodeOrigin.EMBEDDED:
        assert report.segments[0].delivered_first.timecode == case.segments[0].start
        assert s.rate is not None and s.start_timecode is not None
        base = fc.smpte_frame_number(s.start_timecode, s.rate)
        last_label = fc.smpte_label(base + end - 1, s.rate, s.drop_frame)
        assert report.segments[0].delivered_last.timecode == last_label


@pytest.mark.parametrize(
    ("source", "case_name"),
    [
        ("hevc_closed_mp4", "multi_segment"),
        ("h264_mkv", "inside_one_gop"),
        ("h264_ts", "keyframe_in"),
        ("hevc_open_mp4", "very_end"),
        ("h264_mov", "one_frame"),
    ],
)
def test_exact_preset_mp4(
    media_library: MediaLibrary, tmp_path: Path, source: str, case_name: str
) -> None:
    s = media_library.get(source)
    case = _cases(s)[case_name]
    out, report = _cut(s, tmp_path, case, Accuracy.EXACT, Preset.MP4)
    _judge_exact(s, out, case, report, Preset.MP4)


def _assert_no_inband_dependency(out: Path, tmp_path: Path) -> None:
    """In avc1/hvc1 tracks the sample entry holds the parameter sets; a joined clip whose
    copied part silently depends on in-band SPS/PPS breaks in players that ignore them
    (FFMPEG_NOTES: test with a decoder that gets no help from repeated in-band headers)."""
    tag = fc.video_codec_tag(out)
    assert tag in ("avc1", "hvc1", "avc3", "hev1")
    if tag in ("avc3", "hev1"):
        return  # in-band parameter sets are the declared mechanism for these entries
    stripped = tmp_path / f"stripped{out.suffix}"
    fc.strip_inband_parameter_sets(out, stripped)
    assert fc.decode_errors(stripped) == "", "needs in-band parameter sets to decode"
    assert fc.decoded_frame_hashes(stripped) == fc.decoded_frame_hashes(out)


@pytest.mark.parametrize("case_name", ["very_end", "multi_segment"])
def test_exact_smart_cut_of_unknown_encoder_needs_no_inband_parameter_sets(
    media_h264_nosei_mp4: MediaSample, tmp_path: Path, case_name: str
) -> None:
    """Without x264's settings SEI the head cannot copy the source's encoder settings."""
    s = media_h264_nosei_mp4
    case = _cases(s)[case_name]
    out, report = _cut(s, tmp_path, case, Accuracy.EXACT, Preset.ORIGINAL)
    _judge_exact(s, out, case, report, Preset.ORIGINAL)
    if report.frames_copied == 0:
        # Declining to smart cut is a valid answer, if the report says why.
        assert all(seg.fallback_reason for seg in report.segments)
        return
    _assert_no_inband_dependency(out, tmp_path)


# --- fast mode -----------------------------------------------------------------------------


FAST_MATRIX = [
    (src, case)
    for src in VALID_SOURCES
    if src != "h264_faststart_mp4"
    for case in ("inside_one_gop", "multi_segment", "very_start", "keyframe_in", "one_frame")
] + [("h264_mp4", "very_end"), ("h264_mov", "very_end"), ("h264_mp4", "whole_file")]


@pytest.mark.parametrize(("source", "case_name"), FAST_MATRIX)
def test_fast_copies_from_the_keyframe_before(
    media_library: MediaLibrary, tmp_path: Path, source: str, case_name: str
) -> None:
    s = media_library.get(source)
    case = _cases(s)[case_name]
    out, report = _cut(s, tmp_path, case, Accuracy.FAST, Preset.ORIGINAL)
    assert report.strategy == "copy" and report.frames_reencoded == 0
    kf = fc.video_frames(s.path).keyframes
    src_h, out_h = fc.decoded_frame_hashes(s.path), fc.decoded_frame_hashes(out)
    claimed: list[int] = []
    claimed_ranges: list[tuple[int, int]] = []
    for (a, b), seg in zip(case.expected, report.segments, strict=True):
        first, last = seg.delivered_first.frame, seg.delivered_last.frame
        # The engine documents no edit lists in fast mode: what a decoder shows is the claim.
        assert first == max(k for k in kf if k <= a), "must start at the keyframe at/before in"
        assert last + 1 >= b, "the requested frames must all be there"
        assert seg.strategy == "copy" and seg.frames_reencoded == 0
        claimed.extend(range(first, last + 1))
        claimed_ranges.append((first, last + 1))
    assert report.frame_count == len(claimed)
    assert out_h == [src_h[i] for i in claimed], "decoded output differs from the claimed frames"
    assert fc.decode_errors(out) == ""
    assert fc.container_format(out) == fc.container_format(s.path)
    _assert_av_agree(s.path, out, claimed_ranges)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["truncated_mp4", "not_media"])
def test_unreadable_source_is_invalid_media(
    media_library: MediaLibrary, tmp_path: Path, name: str
) -> None:
    out = tmp_path / "clip.mp4"
    with pytest.raises(InvalidMedia):
        engine.cut(media_library.get(name).path, out, CutSpec(segments=(Segment(0.5, 1.5),)))
    assert list(tmp_path.iterdir()) == []


def test_source_truncated_inside_its_data_never_yields_a_clip(
    media_truncated_faststart_mp4: MediaSample, tmp_path: Path
) -> None:
    """Its index promises 5 s, its data stops half-way: the full range cannot succeed."""
    out = tmp_path / "clip.mp4"
    with pytest.raises(ClipperError):
        engine.cut(media_truncated_faststart_mp4.path, out, CutSpec(segments=(Segment(1.0, 4.5),)))
    assert list(tmp_path.iterdir()) == []


# --- hygiene -------------------------------------------------------------------------------


def _leftover_processes(*paths: Path) -> list[str]:
    """FFmpeg/ffprobe processes still around: our children (zombies included) or any process
    whose command line names one of `paths` (catches orphans re-parented away from us).

    Other children (a session's redis-server, say) belong to other fixtures.
    """
    me = str(os.getpid())
    needles = [str(p).encode() for p in paths]
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)
            comm = fields[0].split("(", 1)[1]
            state, ppid = fields[1].split()[:2]
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if proc.name == me or not comm.startswith(("ffmpeg", "ffprobe")):
            continue
        if ppid == me or any(n in cmdline for n in needles):
            found.append(f"{proc.name} {comm} {state}")
    return found


def test_source_whose_name_starts_with_a_dash(media_dash_name: MediaSample, tmp_path: Path) -> None:
    case = _cases(media_dash_name)["inside_one_gop"]
    out, report = _cut(media_dash_name, tmp_path, case, Accuracy.EXACT, Preset.ORIGINAL)
    _judge_exact(media_dash_name, out, case, report, Preset.ORIGINAL)


def _isolated_temp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point every temp-dir lookup at an empty folder so stray temp files show up."""
    tmp = tmp_path / "system-tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def test_cut_leaves_no_temp_files_or_processes(
    media_h264_mp4: MediaSample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system_tmp = _isolated_temp(monkeypatch, tmp_path)
    outdir = tmp_path / "out"
    outdir.mkdir()
    case = _cases(media_h264_mp4)["multi_segment"]
    out, report = _cut(media_h264_mp4, outdir, case, Accuracy.EXACT, Preset.ORIGINAL)
    assert report.frame_count == len(_expected_indices(case))
    assert sorted(p.name for p in outdir.iterdir()) == [out.name]
    assert list(system_tmp.iterdir()) == []
    assert _leftover_processes(tmp_path, media_h264_mp4.path) == []


@pytest.mark.parametrize("when", ["probing", "cutting"])
def test_canceled_cut_leaves_nothing_behind(
    media_h264_mp4: MediaSample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    system_tmp = _isolated_temp(monkeypatch, tmp_path)
    outdir = tmp_path / "out"
    outdir.mkdir()
    cancel = threading.Event()
    seen: list[str] = []

    def progress(phase: str, fraction: float) -> None:
        seen.append(phase)
        if phase == when:
            cancel.set()

    case = _cases(media_h264_mp4)["multi_segment"]
    spec = CutSpec(segments=case.segments)
    out = outdir / "clip.mp4"
    with pytest.raises(Canceled):
        engine.cut(
            media_h264_mp4.path, out, spec,
            context=engine.RunContext(cancel=cancel, progress=progress),
        )  # fmt: skip
    assert when in seen
    assert list(outdir.iterdir()) == []
    assert list(system_tmp.iterdir()) == []
    assert _leftover_processes(tmp_path, media_h264_mp4.path) == []


def test_progress_reports_phases_in_order(media_h264_mp4: MediaSample, tmp_path: Path) -> None:
    calls: list[tuple[str, float]] = []
    record: Callable[[str, float], None] = lambda p, f: calls.append((p, f))  # noqa: E731
    case = _cases(media_h264_mp4)["keyframe_in"]
    engine.cut(
        media_h264_mp4.path, tmp_path / "c.mp4", CutSpec(segments=case.segments),
        context=engine.RunContext(progress=record),
    )
    phases = [p for p, _ in calls]
    order = ["probing", "cutting", "verifying"]
    seen = [p for p in order if p in phases]
    assert seen[-2:] == ["cutting", "verifying"]
    assert phases == sorted(phases, key=order.index)
    assert all(0.0 <= f <= 1.0 for _, f in calls)
