"""Signed download links of both backends over real HTTP, and FFmpeg reading sources by URL."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from clipper.settings import Settings
from clipper.storage import Storage, open_storage
from clipper.storage.links import build_local_link
from clipper.storage.s3 import S3Storage
from tests.fixtures.services import CountingProxy, S3Server, s3_settings

HOSTILE_NAME = 'evil"\r\nSet-Cookie: a=1; x="../../etc/passwd\x00.mp4'
UNICODE_NAME = "Pressekonferenz \u2013 Müller 10:00 日本.mp4"  # EN DASH


@pytest.fixture
def clip(storage_settings: Settings, tmp_path: Path) -> tuple[Storage, bytes]:
    """A 200 kB clip stored under c/clip.mp4."""
    storage = open_storage(storage_settings)
    data = os.urandom(200_000)
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    storage.put_clip("c/clip.mp4", path, metadata={}, content_type="video/mp4")
    return storage, data


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_full_get_range_and_disposition(clip: tuple[Storage, bytes]) -> None:
    storage, data = clip
    url, expires_at = storage.download_url("clips", "c/clip.mp4", filename=UNICODE_NAME,
                                           ttl_seconds=600)  # fmt: skip
    assert timedelta(seconds=590) < expires_at - datetime.now(UTC) <= timedelta(seconds=600)
    full = httpx.get(url)
    assert full.status_code == 200
    assert full.content == data
    assert full.headers["accept-ranges"] == "bytes"
    disposition = full.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="Pressekonferenz _ Muller 10_00 _.mp4"')
    encoded = disposition.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == UNICODE_NAME
    part = httpx.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    assert part.content == data[1000:2000]
    tail = httpx.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206
    assert tail.content == data[-10:]


def test_hostile_filename_cannot_inject_headers(clip: tuple[Storage, bytes]) -> None:
    storage, _ = clip
    url, _ = storage.download_url("clips", "c/clip.mp4", filename=HOSTILE_NAME, ttl_seconds=600)
    response = httpx.get(url)
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    disposition = response.headers["content-disposition"]
    assert "\r" not in disposition and "\n" not in disposition and "\x00" not in disposition
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert "/" not in fallback and "\\" not in fallback
    # Exactly two quotes around the fallback: none from the name survived.
    assert disposition.split(";")[1].count('"') == 2
    star = unquote(disposition.split("filename*=UTF-8''", 1)[1])
    assert "/" not in star and '"' not in star and "\r" not in star and "\x00" not in star
    assert star.endswith(".mp4")


def test_local_head_and_s3_head(clip: tuple[Storage, bytes], storage_settings: Settings) -> None:
    storage, data = clip
    url, _ = storage.download_url("clips", "c/clip.mp4", filename="a.mp4", ttl_seconds=600)
    head = httpx.head(url)
    if storage_settings.storage == "local":
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(data))
        assert head.content == b""
    else:
        # S3 signs the method: a GET link does not answer HEAD (as on AWS and MinIO).
        assert head.status_code == 403


def test_expired_link_refused(clip: tuple[Storage, bytes], storage_settings: Settings) -> None:
    storage, _ = clip
    if isinstance(storage, S3Storage):
        signed_at = datetime.now(UTC) - timedelta(seconds=120)
        url, expires_at = storage.download_url_at(
            "clips", "c/clip.mp4", filename="a.mp4", ttl_seconds=60, signed_at=signed_at
        )
        assert expires_at < datetime.now(UTC)
    else:
        url = build_local_link(
            storage_settings.public_base_url,
            storage_settings.link_secret.get_secret_value(),
            "clips",
            "c/clip.mp4",
            filename="a.mp4",
            expires_unix=int(time.time()) - 1,
        )
    response = httpx.get(url)
    assert response.status_code == 403
    if storage_settings.storage == "local":
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "the link has expired"


def test_short_lived_link_dies(clip: tuple[Storage, bytes]) -> None:
    storage, data = clip
    # Links are signed to the whole second, so a 3 s link lives 2-3 s: room for a busy machine.
    url, expires_at = storage.download_url("clips", "c/clip.mp4", filename="a.mp4", ttl_seconds=3)
    first = httpx.get(url)
    assert (first.status_code, first.content) == (200, data)
    time.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 1.1)
    assert httpx.get(url).status_code == 403


def test_tampered_links_refused(
    clip: tuple[Storage, bytes], storage_settings: Settings, tmp_path: Path
) -> None:
    storage, data = clip
    other = tmp_path / "other"
    other.write_bytes(b"other clip")
    storage.put_clip("c/other.mp4", other, metadata={}, content_type="video/mp4")
    url, _ = storage.download_url("clips", "c/clip.mp4", filename="a.mp4", ttl_seconds=600)
    assert httpx.get(url).status_code == 200
    s3 = storage_settings.storage == "s3"
    sig_param = "X-Amz-Signature" if s3 else "sig"
    signature = dict(parse_qsl(urlsplit(url).query))[sig_param]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    later = str(int(time.time()) + 7200)
    tampered = [
        url.replace("c/clip.mp4", "c/other.mp4"),
        url.replace("/clips/", "/sources/", 1) if not s3 else url.replace("c/clip", "c/Clip"),
        _with_query(url, **{sig_param: flipped}),
        _with_query(url, **({"X-Amz-Expires": "7200"} if s3 else {"expires": later})),
        _with_query(url, **({"response-content-disposition": "inline"} if s3 else
                           {"filename": "b.mp4"})),
    ]  # fmt: skip
    for bad in tampered:
        assert bad != url
        response = httpx.get(bad)
        assert response.status_code == 403, bad
        assert response.content != data


@pytest.fixture(scope="module")
def raw_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s of 320x180 uyvy422 rawvideo in MOV, index at the end: 35 MB, made without encoding."""
    path = tmp_path_factory.mktemp("raw") / "raw.mov"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i",
         "testsrc2=size=320x180:rate=25:duration=12", "-c:v", "rawvideo", "-pix_fmt", "uyvy422",
         "-f", "mov", str(path)],
        check=True,
    )  # fmt: skip
    return path


def _ffprobe_duration(source: str) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", source],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return float(json.loads(out)["format"]["duration"])


def test_local_source_input_is_a_path(tmp_path: Path, raw_video: Path) -> None:
    storage = open_storage(Settings(storage="local", local_storage_dir=tmp_path / "s"))
    storage.ensure_buckets()
    storage.put_source("raw.mov", raw_video)
    source = storage.source_input_url("raw.mov", 60)
    assert Path(source).is_absolute()
    assert _ffprobe_duration("file:" + source) == pytest.approx(12.0, abs=0.05)


def test_ffmpeg_reads_s3_source_with_range_requests(
    s3_server: S3Server, s3_proxy: CountingProxy, raw_video: Path
) -> None:
    storage = S3Storage(s3_settings(s3_server, s3_endpoint=s3_proxy.endpoint))
    storage.ensure_buckets()
    storage.put_source("raw.mov", raw_video)
    size = raw_video.stat().st_size
    url = storage.source_input_url("raw.mov", 600)
    assert urlsplit(url).netloc == s3_proxy.endpoint
    s3_proxy.reset()
    assert _ffprobe_duration(url) == pytest.approx(12.0, abs=0.05)
    probe_bytes = s3_proxy.bytes_to_client
    s3_proxy.reset()
    # One frame from the last second: FFmpeg must seek there with a Range request.
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-ss", "11.5", "-i", url, "-frames:v", "1",
         "-f", "null", "-"],
        check=True,
        timeout=60,
    )  # fmt: skip
    seek_bytes = s3_proxy.bytes_to_client
    print(
        f"\nsource {size} B; ffprobe read {probe_bytes} B; one frame at 11.5 s read {seek_bytes} B"
    )
    # Measured: ~0.4 MB and ~1 MB of 35 MB (index + a few frames + socket buffers).
    assert 0 < probe_bytes < size / 8
    assert 0 < seek_bytes < size / 8
