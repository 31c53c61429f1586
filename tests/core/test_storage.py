"""Both storage backends against real stores: round trips, metadata, hostile keys, outages."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from clipper.errors import BadRequest, NotFound, TransientError, UnsafeInput
from clipper.settings import Settings
from clipper.storage import open_storage, validate_key
from clipper.storage.local import LocalStorage
from clipper.storage.s3 import S3Storage, http_pool
from tests.fixtures.services import CountingProxy, S3Server, free_port, s3_settings

HOSTILE_KEYS = [
    "",
    "/etc/passwd",
    "-i.mp4",
    "../secret.mp4",
    "a/../../b.mp4",
    "a/./b.mp4",
    "a//b.mp4",
    "a\\b.mp4",
    "a\nb.mp4",
    "a\rb.mp4",
    "a\x00b.mp4",
    "a\x1bb.mp4",
    "a\u202eb.mp4",  # right-to-left override: hides the real extension
    "x" * 1025,
    "é" * 513,  # 1026 UTF-8 bytes
]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_source_round_trip(storage_settings: Settings, tmp_path: Path) -> None:
    storage = open_storage(storage_settings)
    data = os.urandom(50_000)
    info = storage.put_source("press/2026/speech é.mp4", _write(tmp_path / "a.mp4", data))
    assert info.size_bytes == len(data)
    assert info.etag == hashlib.md5(data).hexdigest()  # single-part: the content MD5
    stat = storage.stat_source("press/2026/speech é.mp4")
    assert (stat.key, stat.size_bytes, stat.etag) == (info.key, len(data), info.etag)
    storage.put_source("broll/city.mp4", _write(tmp_path / "b.mp4", b"other"))
    storage.put_source("press/2025/old.mp4", _write(tmp_path / "c.mp4", b"old"))
    listed = storage.list_sources()
    assert [o.key for o in listed] == [
        "broll/city.mp4",
        "press/2025/old.mp4",
        "press/2026/speech é.mp4",
    ]
    assert [o.key for o in storage.list_sources(prefix="press/")] == [
        "press/2025/old.mp4",
        "press/2026/speech é.mp4",
    ]
    assert len(storage.list_sources(limit=2)) == 2
    assert storage.list_sources(prefix="nothing/") == []


def test_clip_metadata_round_trip_and_delete(storage_settings: Settings, tmp_path: Path) -> None:
    storage = open_storage(storage_settings)
    metadata = {
        "source_key": "press/speech é.mp4",
        "source-etag": "abc123",
        "ranges": '[[370, 645]] "quoted"\r\nX-Injected: 1',
        "accuracy": "exact",
        "clip_id": "c_1",
        "percent": "100%41",
    }
    clip = _write(tmp_path / "clip.mp4", os.urandom(10_000))
    storage.put_clip("c/c_1.mp4", clip, metadata=metadata, content_type="video/mp4")
    info = storage.stat_clip("c/c_1.mp4")
    assert info is not None
    # Names are normalized (lower case, '_' → '-'); values come back exactly.
    assert info.metadata == {
        "source-key": "press/speech é.mp4",
        "source-etag": "abc123",
        "ranges": '[[370, 645]] "quoted"\r\nX-Injected: 1',
        "accuracy": "exact",
        "clip-id": "c_1",
        "percent": "100%41",
    }
    assert "x-injected" not in info.metadata
    storage.delete_clip("c/c_1.mp4")
    assert storage.stat_clip("c/c_1.mp4") is None
    storage.delete_clip("c/c_1.mp4")  # idempotent


def test_missing_objects(storage_settings: Settings) -> None:
    storage = open_storage(storage_settings)
    with pytest.raises(NotFound):
        storage.stat_source("nope.mp4")
    assert storage.stat_clip("nope.mp4") is None


def test_bad_metadata_names_refused(storage_settings: Settings, tmp_path: Path) -> None:
    storage = open_storage(storage_settings)
    clip = _write(tmp_path / "clip.mp4", b"x")
    with pytest.raises(UnsafeInput):
        storage.put_clip("k.mp4", clip, metadata={"bad\nname": "v"}, content_type="video/mp4")
    with pytest.raises(BadRequest):
        storage.put_clip("k.mp4", clip, metadata={"big": "x" * 3000}, content_type="video/mp4")
    assert storage.stat_clip("k.mp4") is None


@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=range(len(HOSTILE_KEYS)))
def test_validate_key_refuses_hostile_keys(key: str) -> None:
    with pytest.raises(UnsafeInput):
        validate_key(key)


@pytest.mark.parametrize("key", ["a.mp4", "press/2026/Speech (1) é.mov", "x" * 1024, "a..b/c"])
def test_validate_key_accepts_ordinary_keys(key: str) -> None:
    assert validate_key(key) == key


def test_backends_refuse_hostile_keys(storage_settings: Settings, tmp_path: Path) -> None:
    storage = open_storage(storage_settings)
    clip = _write(tmp_path / "clip.mp4", b"x")
    for key in HOSTILE_KEYS:
        with pytest.raises(UnsafeInput):
            storage.put_source(key, clip)
        with pytest.raises(UnsafeInput):
            storage.stat_source(key)
        with pytest.raises(UnsafeInput):
            storage.download_url("clips", key, filename="a.mp4", ttl_seconds=60)
    assert storage.list_sources() == []


def test_local_cannot_escape_storage_dir(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    storage = LocalStorage(Settings(storage="local", local_storage_dir=root))
    storage.ensure_buckets()
    secret = _write(tmp_path / "secret.txt", b"top secret")
    # A symlink planted inside the library must not lead out of it.
    (root / "sources" / "link.mp4").symlink_to(secret)
    with pytest.raises(UnsafeInput):
        storage.stat_source("link.mp4")
    with pytest.raises(UnsafeInput):
        storage.source_input_url("link.mp4", 60)
    (root / "sources" / "dir").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(UnsafeInput):
        storage.stat_source("dir/secret.txt")
    assert [o.key for o in storage.list_sources()] == []


def test_local_put_is_atomic_and_leaves_no_temp(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    storage = LocalStorage(Settings(storage="local", local_storage_dir=root))
    storage.ensure_buckets()
    storage.put_source("a.mp4", _write(tmp_path / "a", b"first"))
    storage.put_source("a.mp4", _write(tmp_path / "b", b"second"))
    assert (root / "sources" / "a.mp4").read_bytes() == b"second"
    assert storage.stat_source("a.mp4").etag == hashlib.md5(b"second").hexdigest()
    assert list((root / ".tmp").iterdir()) == []


def test_local_file_dropped_in_by_hand_gets_an_etag(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    storage = LocalStorage(Settings(storage="local", local_storage_dir=root))
    storage.ensure_buckets()
    (root / "sources" / "sample.mp4").write_bytes(b"by hand")
    info = storage.stat_source("sample.mp4")
    assert info.etag == hashlib.md5(b"by hand").hexdigest()
    assert info.size_bytes == 7
    assert storage.source_input_url("sample.mp4", 60) == str(root / "sources" / "sample.mp4")


def test_ensure_buckets_is_idempotent_and_check_passes(storage_settings: Settings) -> None:
    storage = open_storage(storage_settings)
    storage.ensure_buckets()
    storage.ensure_buckets()
    storage.check()


def test_s3_check_fails_when_bucket_missing(s3_server: S3Server) -> None:
    storage = S3Storage(s3_settings(s3_server))
    with pytest.raises(TransientError, match="does not exist"):
        storage.check()


def test_s3_server_down_is_transient_and_fast(s3_server: S3Server, tmp_path: Path) -> None:
    settings = s3_settings(s3_server, s3_endpoint=f"127.0.0.1:{free_port()}")
    storage = S3Storage(settings)
    clip = _write(tmp_path / "clip.mp4", b"x")
    calls = [
        storage.check,
        storage.ensure_buckets,
        lambda: storage.stat_source("a.mp4"),
        lambda: storage.list_sources(),
        lambda: storage.put_clip("a.mp4", clip, metadata={}, content_type="video/mp4"),
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(TransientError) as caught:
            call()
        assert time.monotonic() - started < 5
        assert s3_server.secret_key not in str(caught.value)


def test_s3_outage_through_proxy(
    s3_server: S3Server, s3_proxy: CountingProxy, tmp_path: Path
) -> None:
    settings = s3_settings(s3_server, s3_endpoint=s3_proxy.endpoint)
    storage = S3Storage(settings)
    storage.ensure_buckets()
    storage.put_source("a.mp4", _write(tmp_path / "a", b"abc"))
    assert storage.stat_source("a.mp4").size_bytes == 3
    s3_proxy.stop()
    started = time.monotonic()
    with pytest.raises(TransientError):
        storage.stat_source("a.mp4")
    assert time.monotonic() - started < 5


def test_s3_hanging_server_times_out(s3_server: S3Server) -> None:
    # A server that accepts the connection and never answers (a stuck load balancer).
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        endpoint = f"127.0.0.1:{listener.getsockname()[1]}"
        pool = http_pool(connect_timeout_seconds=1, read_timeout_seconds=1, retries=0)
        storage = S3Storage(s3_settings(s3_server, s3_endpoint=endpoint), http_client=pool)
        started = time.monotonic()
        with pytest.raises(TransientError):
            storage.stat_source("a.mp4")
        assert time.monotonic() - started < 5
    finally:
        stop.set()
        thread.join()
        for sock in held:
            sock.close()
        listener.close()


def test_s3_multipart_upload(s3_server: S3Server, tmp_path: Path) -> None:
    settings = s3_settings(s3_server)
    storage = S3Storage(settings, part_size_bytes=5 * 1024 * 1024)
    storage.ensure_buckets()
    data = os.urandom(6 * 1024 * 1024)
    big = _write(tmp_path / "big", data)
    info = storage.put_clip("big.mp4", big, metadata={"clip-id": "c"}, content_type="video/mp4")
    assert info.size_bytes == len(data)
    assert info.etag.endswith("-2")  # S3's multipart ETag: md5 of part md5s, dash, part count
    assert info.metadata == {"clip-id": "c"}


def test_s3_links_are_signed_for_the_public_endpoint(s3_server: S3Server) -> None:
    settings = s3_settings(s3_server, s3_public_endpoint="https://media.example.org")
    storage = open_storage(settings)
    url, _ = storage.download_url("clips", "a.mp4", filename="a.mp4", ttl_seconds=60)
    assert urlsplit(url).scheme == "https"
    assert urlsplit(url).netloc == "media.example.org"
    internal = storage.source_input_url("a.mp4", 60)
    assert urlsplit(internal).netloc == s3_server.endpoint


def test_link_ttl_is_bounded(storage_settings: Settings) -> None:
    storage = open_storage(storage_settings)
    for ttl in (0, 7 * 24 * 3600 + 1):
        with pytest.raises(BadRequest):
            storage.download_url("clips", "a.mp4", filename="a.mp4", ttl_seconds=ttl)


def test_s3_missing_bucket_is_not_a_client_error(s3_server: S3Server) -> None:
    storage = S3Storage(s3_settings(s3_server))  # buckets never created
    with pytest.raises(TransientError):
        storage.list_sources()


def test_s3_5xx_is_transient(s3_server: S3Server) -> None:
    class Unavailable(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD = do_PUT = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"127.0.0.1:{server.server_address[1]}"
        storage = S3Storage(s3_settings(s3_server, s3_endpoint=endpoint))
        started = time.monotonic()
        with pytest.raises(TransientError):
            storage.stat_source("a.mp4")
        with pytest.raises(TransientError):
            storage.list_sources()
        assert time.monotonic() - started < 5
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
