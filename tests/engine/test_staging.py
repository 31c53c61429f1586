"""Staging (clipper.engine.ffmpeg.staging): the accuracy matrix's judges, run with the span staged
first,
and a cut through a real signed S3 URL whose bytes read are counted by a proxy."""

from __future__ import annotations

import functools
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from clipper import engine
from clipper.engine import prepare
from clipper.engine.media import mp4index
from clipper.spec import Accuracy, CutSpec, Preset, Segment, TimecodeOrigin
from clipper.storage.s3 import S3Storage
from tests import framecheck as fc
from tests.engine import test_accuracy as acc
from tests.fixtures.media import MediaLibrary
from tests.fixtures.services import CountingProxy, S3Server, s3_settings

ALWAYS = engine.EngineConfig(stage="always")
MD5 = ("-f", "framemd5", "-")


@pytest.fixture
def staged_cuts(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every engine.cut runs with staging forced on; records what each stage produced."""
    results: list[Any] = []
    real_stage = prepare.stage_span

    def spy(*args: Any, **kwargs: Any) -> Any:
        result = real_stage(*args, **kwargs)
        results.append(result)
        return result

    monkeypatch.setattr(prepare, "stage_span", spy)
    monkeypatch.setattr(
        engine, "cut", functools.partial(engine.cut, context=engine.RunContext(ALWAYS))
    )
    return results


def _assert_staged(results: list[Any]) -> None:
    assert results and all(r is not None for r in results), "the cut did not stage its span"


@pytest.mark.parametrize(
    ("source", "case_name"),
    [
        ("h264_mp4", "inside_one_gop"),
        ("h264_mp4", "multi_segment"),
        ("h264_mp4", "very_end"),
        ("h264_mkv", "inside_one_gop"),
        ("h264_ts", "keyframe_in"),
        ("h264_ts", "multi_segment"),
        ("hevc_closed_mp4", "multi_segment"),
        ("hevc_open_mp4", "inside_one_gop"),
    ],
)
def test_exact_staged_matches_the_source(
    staged_cuts: list[Any],
    media_library: MediaLibrary,
    tmp_path: Path,
    source: str,
    case_name: str,
) -> None:
    acc.test_exact_original(media_library, tmp_path, source, case_name)
    _assert_staged(staged_cuts)


def test_exact_staged_mov_smpte(
    staged_cuts: list[Any], media_library: MediaLibrary, tmp_path: Path
) -> None:
    acc.test_exact_smpte(media_library, tmp_path, "h264_mov", TimecodeOrigin.EMBEDDED, 30, 95)
    _assert_staged(staged_cuts)


@pytest.mark.parametrize(
    ("source", "case_name"),
    [
        ("h264_mp4", "inside_one_gop"),
        ("h264_mp4", "multi_segment"),
        ("h264_ts", "inside_one_gop"),
        # From the stage's first frame (no -ss): the copy once kept one frame too many.
        ("h264_mp4", "very_start"),
    ],
)
def test_fast_staged_matches_the_source(
    staged_cuts: list[Any],
    media_library: MediaLibrary,
    tmp_path: Path,
    source: str,
    case_name: str,
) -> None:
    acc.test_fast_copies_from_the_keyframe_before(media_library, tmp_path, source, case_name)
    _assert_staged(staged_cuts)
    # One stream copy of an MP4: the source's own packets, bit for bit (an MPEG-TS source's
    # copy already differs in its first packet without staging, so it is not checked).
    if case_name == "inside_one_gop" and source != "h264_ts":
        src = _video_packet_md5s(media_library.get(source).path)
        (out,) = tmp_path.glob("clip.*")
        got = _video_packet_md5s(out)
        assert got and set(got) <= set(src), "copied packets differ from the source's"


def _video_packet_md5s(path: Path) -> list[str]:
    """MD5 of every video packet's payload (ffmpeg's framemd5 muxer on a stream copy)."""
    text = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", f"file:{path}", "-map", "0:v:0", "-c", "copy", *MD5],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return [
        line.rsplit(",", 1)[1].strip() for line in text.splitlines() if not line.startswith("#")
    ]


def _long_source(path: Path) -> Path:
    """30 s of 320x180 with a 1 s GOP and busy pictures, so a 10 s clip is a third of it."""
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=30",
            "-filter_complex", "[0:v]noise=alls=30:allf=t[v]", "-map", "[v]", "-map", "1:a",
            "-c:v", "libx264", "-preset", "veryfast", "-b:v", "1500k",
            "-x264-params", "keyint=25:min-keyint=25", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "64k", str(path),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    return path


def test_remote_cut_reads_at_most_twice_the_clip(
    s3_server: S3Server, s3_proxy: CountingProxy, tmp_path: Path
) -> None:
    src = _long_source(tmp_path / "long.mp4")
    storage = S3Storage(s3_settings(s3_server, s3_endpoint=s3_proxy.endpoint))
    storage.ensure_buckets()
    storage.put_source("long.mp4", src)
    url = storage.source_input_url("long.mp4", 600)
    assert url.startswith("http://")
    frames = fc.video_frames(src)
    rel = frames.relative()
    # 10 s (the size PRODUCT.md's target speaks of) from mid-GOP to mid-GOP: head, copied
    # middle and tail. A shorter clip lets the fixed reads (index, the stage's lead-in, what
    # the proxy had in flight when FFmpeg closed a connection) swamp the ratio.
    first, end = 312, 562
    spec = CutSpec(
        segments=(Segment(acc._mid(rel, first), acc._mid(rel, end)),),
        accuracy=Accuracy.EXACT,
        preset=Preset.ORIGINAL,
    )
    # The service probes a source once per version (workers/probe_cache.py): not per clip.
    media = engine.probe(url)
    s3_proxy.reset()
    out = tmp_path / "clip.mp4"
    report = engine.cut(url, out, spec, media=media)  # stage="auto": staged, as http(s)
    read = s3_proxy.bytes_to_client
    print(f"read {read} bytes, clip {out.stat().st_size}, moov {len(mp4index.read_moov(src))}")
    moov = len(mp4index.read_moov(src))
    clip = out.stat().st_size
    assert read <= 2 * (clip + moov), f"read {read} bytes for a {clip}-byte clip (moov {moov})"
    assert report.frame_count == end - first
    acc._assert_frames_match(src, out, list(range(first, end)))
    assert fc.decode_errors(out) == ""
    assert Fraction(report.frame_count, 25) == Fraction(end - first, 25)
