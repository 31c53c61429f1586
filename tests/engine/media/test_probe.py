"""Probe on generated media (expected values from how each sample was made) and on junk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clipper import engine
from clipper.engine.media.model import MediaInfo, parse_media_info
from clipper.errors import InvalidMedia
from clipper.spec import Preset
from tests.fixtures.media import VALID_SOURCES, MediaLibrary, MediaSample

_CONTAINERS = {"mp4": "mov", "mov": "mov", "mkv": "matroska", "ts": "mpegts"}
_EXTENSIONS = {"mp4": ".mp4", "mov": ".mov", "mkv": ".mkv", "ts": ".ts"}


@pytest.mark.parametrize("name", VALID_SOURCES)
def test_probe_matches_how_the_sample_was_made(media_library: MediaLibrary, name: str) -> None:
    s = media_library.get(name)
    media = engine.probe(s.path)
    assert media.container == _CONTAINERS[s.container]
    assert media.video.codec == s.video_codec
    assert (media.video.width, media.video.height) == (320, 180)
    assert media.video.pix_fmt == "yuv420p"
    assert media.frame_rate == s.rate
    assert media.start_timecode == s.start_timecode
    assert [a.codec for a in media.audio] == [s.audio_codec]
    assert media.audio[0].sample_rate > 0 and media.audio[0].channels >= 1
    assert s.rate is not None
    # Frame count: from the index where there is one, else from the last packets' times.
    assert media.frame_count == round(s.duration_s * s.rate)
    assert abs(media.duration_seconds - s.duration_s) < 0.05
    assert media.video.has_b_frames > 0
    assert engine.output_extension(media, Preset.ORIGINAL) == _EXTENSIONS[s.container]


def test_media_info_round_trips_through_json(media_h264_mp4: MediaSample) -> None:
    media = engine.probe(media_h264_mp4.path)
    text = json.dumps(media.to_dict())
    again = MediaInfo.from_dict(json.loads(text))
    assert again == media
    assert json.loads(text)["video"]["frame_rate"] == "30000/1001"


def test_mpegts_first_frame_time_is_kept(media_h264_ts: MediaSample) -> None:
    media = engine.probe(media_h264_ts.path)
    assert media.video.start_seconds > 1.0  # the muxer's initial offset, not zero


def test_keyframes_near_a_point(media_h264_mov: MediaSample) -> None:
    media = engine.probe(media_h264_mov.path)
    assert media_h264_mov.gop_frames and media_h264_mov.rate
    gop_s = media_h264_mov.gop_frames / float(media_h264_mov.rate)
    keys = engine.keyframes_near(media_h264_mov.path, media, [1.5])
    # The keyframe at or before 1.5 s and the ones after it, on the fixed GOP grid.
    assert keys[0] == pytest.approx(gop_s)
    assert all(abs(k / gop_s - round(k / gop_s)) < 1e-6 for k in keys)
    assert len(keys) >= 2


@pytest.mark.parametrize("name", ["not_media", "truncated_mp4"])
def test_junk_is_invalid_media(media_library: MediaLibrary, name: str) -> None:
    with pytest.raises(InvalidMedia) as err:
        engine.probe(media_library.get(name).path)
    assert err.value.message


def test_audio_only_file_is_invalid_media(tmp_path: Path) -> None:
    import subprocess

    path = tmp_path / "tone.m4a"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(path)],
        check=True,
    )
    with pytest.raises(InvalidMedia, match="no video"):
        engine.probe(path)


def test_probe_json_without_format_is_invalid() -> None:
    with pytest.raises(InvalidMedia):
        parse_media_info({})
    with pytest.raises(InvalidMedia, match="no video"):
        parse_media_info({"format": {"format_name": "mp3"}, "streams": [{"codec_type": "audio"}]})


def test_timecode_from_a_tmcd_data_stream() -> None:
    data = {
        "format": {"format_name": "mov,mp4", "duration": "2.0", "tags": {"major_brand": "qt  "}},
        "streams": [
            {
                "index": 0,
                "codec_type": "video",
                "codec_name": "h264",
                "width": 64,
                "height": 36,
                "r_frame_rate": "25/1",
                "time_base": "1/12800",
                "nb_frames": "50",
            },
            {"index": 1, "codec_type": "data", "tags": {"timecode": "10:00:00:00"}},
        ],
    }
    media = parse_media_info(data)
    assert media.start_timecode == "10:00:00:00"
    assert media.frame_count == 50 and not media.is_mp4
