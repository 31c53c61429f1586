"""Hostile requests and media, table-driven: each gets a precise 4xx problem+json naming the
field (or the body), or is accepted and fails as a classified job failure; never a 5xx.

The app runs in-process on S3 (ministack) and the session Redis, so error texts that could
carry a storage URL are real ones (tests/fixtures/leaks.py checks them all). Rows that pass
the API are run by an in-process RQ worker, with the settings in the environment.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from clipper.settings import Settings, get_settings
from clipper.storage import open_storage
from tests.fixtures.app import API_KEYS, api_keys_setting, settings_env
from tests.fixtures.services import RedisServer, S3Server, s3_settings
from workers import records
from workers.queues import QUEUE_NAMES, get_queues

GOOD = "good/talk.mp4"  # media_h264_mp4: 5 s at 30000/1001, tmcd 01:00:00;00 (drop-frame)
PAL = "good/pal.mov"  # media_h264_mov: 4 s at 25 fps, tmcd 10:00:00:00


@dataclass(frozen=True)
class Case:
    """One hostile request: what is sent and what must come back."""

    name: str
    body: Any = None  # JSON for POST /v1/clips (merged over a valid request unless raw)
    status: int = 422
    field: str | None = "body"  # the problem's `field` (prefix match), None: not checked
    method: str = "POST"
    path: str = "/v1/clips"
    raw: bytes | None = None  # sent as is instead of `body`
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    job_failure: str | None = None  # accepted (202), then the job fails with this code


def clip(**fields: Any) -> dict[str, Any]:
    """A valid request of the good source with `fields` changed (None removes one)."""
    body: dict[str, Any] = {"source": GOOD, "start": 1.0, "end": 2.0}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


SEGMENT = {"start": 0, "end": 1}

RANGES = [
    Case("negative start", clip(start=-1), field="start"),
    Case("end before start", clip(start=3, end=2), field="end"),
    Case("empty range", clip(start=2, end=2), field="end"),
    Case("start past the source", clip(start=100, end=101), field="start"),
    Case("end past the source", clip(end=1e6), field="end"),
    Case("start 1e308", clip(start=1e308, end=None), field="start"),
    Case("start NaN", raw=b'{"source": "good/talk.mp4", "start": NaN}', field="start"),
    Case("start Infinity", raw=b'{"source": "good/talk.mp4", "start": Infinity}', field="start"),
    Case("end -Infinity", raw=b'{"source": "good/talk.mp4", "end": -Infinity}', field="end"),
    Case("start 1e999 (inf)", raw=b'{"source": "good/talk.mp4", "start": 1e999}', field="start"),
    Case("start 10**400", raw=b'{"source": "good/talk.mp4", "start": 1' + b"0" * 400 + b"}",
         field="start"),
    Case("start true", clip(start=True), field="start"),
    Case("start list", clip(start=[1]), field="start"),
    Case("start object", clip(start={"s": 1}), field="start"),
    Case("start empty string", clip(start=""), field="start"),
    Case("start words", clip(start="abc"), field="start"),
    Case("minutes 61", clip(start="00:61:00.000"), field="start"),
    Case("time with two dots", clip(start="00:00:01.5.5"), field="start"),
    Case("negative timecode", clip(start="-00:00:01.000"), field="start"),
    Case("SMPTE frame 30 at 29.97", clip(start="01:00:00:30", end=None), field="start"),
    Case("SMPTE frame 99", clip(start="01:00:00:99", end=None), field="start"),
    Case("drop-frame label that does not exist",
         clip(start="00:01:00;00", end=None, timecode_origin="zero"), field="start"),
    Case("drop-frame label ;01 that does not exist",
         clip(start="00:01:00;01", end=None, timecode_origin="zero"), field="start"),
    Case("drop-frame at 25 fps", clip(source=PAL, start="10:00:01;00", end=None), field="start"),
    Case("SMPTE frame 25 at 25 fps", clip(source=PAL, start="10:00:01:25", end=None),
         field="start"),
    Case("timecode before the embedded start", clip(start="00:00:01;00", end=None),
         field="start"),
    Case("10 000 digit time", clip(start="1" * 10000), field="start"),
    Case("no segments", clip(start=None, end=None, segments=[]), field="segments"),
    Case("101 segments", clip(start=None, end=None, segments=[{"start": 0, "end": 1}] * 101),
         field="segments"),
    Case("segments and start", clip(segments=[{"start": 0, "end": 1}]), field="body"),
    Case("segment 3 reversed",  # 2 → 1
         clip(start=None, end=None, segments=[*[SEGMENT] * 3, {"start": 2, "end": 1}]),
         field="segments[3]"),
    Case("segment with extra field",
         clip(start=None, end=None, segments=[{"start": 0, "end": 1, "rate": 5}]),
         field="segments[0].rate"),
    Case("unknown field", clip(speed=2), field="speed"),
    Case("accuracy perfect", clip(accuracy="perfect"), field="accuracy"),
    Case("preset path", clip(preset="../../etc/passwd"), field="preset"),
    Case("timecode origin unknown", clip(timecode_origin="source"), field="timecode_origin"),
    Case("priority urgent", clip(priority="urgent"), field="priority"),
]  # fmt: skip

KEYS = [
    Case("empty key", clip(source=""), field="source"),
    Case("absolute key", clip(source="/etc/passwd"), field="source"),
    Case("dot-dot key", clip(source="../secret.mp4"), field="source"),
    Case("dot-dot inside", clip(source="a/../good/talk.mp4"), field="source"),
    Case("dash key", clip(source="-i.mp4"), field="source"),
    Case("backslash key", clip(source="a\\b.mp4"), field="source"),
    Case("NUL in key", clip(source="a\u0000b.mp4"), field="source"),
    Case("RLO in key", clip(source="a\u202eb.mp4"), field="source"),
    Case("lone surrogate in key", raw=b'{"source": "a\\ud800.mp4"}', field="source"),
    Case("1025-char key", clip(source="k" * 1025), field="source"),
    Case("key over 1024 bytes", clip(source="\u00e9" * 600), field="source"),
    Case("URL as key", clip(source="http://169.254.169.254/latest/meta-data"), field="source"),
    Case("concat protocol as key", clip(source="concat:a.mp4|b.mp4"), status=404,
         field="source"),
    Case("missing source", clip(source="nope/missing.mp4"), status=404, field="source"),
    Case("source number", clip(source=5), field="source"),
    Case("source null", raw=b'{"source": null}', field="source"),
]  # fmt: skip

FILENAMES = [
    Case("RLO filename", clip(filename="clip\u202egpj.exe"), field="filename"),
    Case("LRI filename", clip(filename="clip\u2066.mp4"), field="filename"),
    Case("zero-width space filename", clip(filename="cl\u200bip.mp4"), field="filename"),
    Case("BOM filename", clip(filename="\ufeffclip.mp4"), field="filename"),
    Case("line separator filename", clip(filename="a\u2028b.mp4"), field="filename"),
    Case("private use filename", clip(filename="a\ue000.mp4"), field="filename"),
    Case("lone surrogate filename", raw=b'{"source": "good/talk.mp4", "filename": "a\\udc00"}',
         field="filename"),
    Case("newline filename", clip(filename="a\r\nSet-Cookie: x=1"), field="filename"),
    Case("quote filename", clip(filename='a".mp4'), field="filename"),
    Case("slash filename", clip(filename="../x.mp4"), field="filename"),
    Case("dot filename", clip(filename="."), field="filename"),
    Case("blank filename", clip(filename="   "), field="filename"),
    Case("201-char filename", clip(filename="f" * 201), field="filename"),
]  # fmt: skip

CALLBACKS = [
    Case(name, clip(callback_url=url), field="callback_url")
    for name, url in [
        ("loopback", "http://127.0.0.1/hook"),
        ("loopback v6", "http://[::1]/hook"),
        ("private", "http://10.0.0.1/hook"),
        ("cloud metadata", "http://169.254.169.254/latest/meta-data"),
        ("shared 100.64/10", "http://100.64.0.1/hook"),
        ("NAT64 of loopback", "http://[64:ff9b::7f00:1]/"),
        ("NAT64 of metadata", "http://[64:ff9b::a9fe:a9fe]/"),
        ("NAT64 local-use", "http://[64:ff9b:1::5db8:d822]/"),
        ("IPv4-mapped loopback", "http://[::ffff:127.0.0.1]/"),
        ("IPv4-compatible loopback", "http://[::127.0.0.1]/"),
        ("6to4 of loopback", "http://[2002:7f00:1::]/"),
        ("6to4 of private", "http://[2002:a00:1::1]/"),
        ("Teredo, private client", "http://[2001:0:5db8:d822:0:f5ff:f5ff:fffe]/"),
        ("multicast", "http://224.0.0.1/"),
        ("v6 multicast", "http://[ff0e::1]/"),
        ("unspecified", "http://0.0.0.0/"),
        ("v6 unspecified", "http://[::]/"),
        ("broadcast", "http://255.255.255.255/"),
        ("benchmark range", "http://198.18.0.1/"),
        ("IETF protocol block", "http://192.0.0.8/"),
        ("documentation v6", "http://[2001:db8::1]/"),
        ("link-local v6 with zone", "http://[fe80::1%25eth0]/"),
        ("localhost name", "http://localhost:8000/hook"),
        ("decimal IP", "http://2130706433/"),
        ("hex dotted IP", "http://0x7f.1/"),
        ("unresolvable", "http://no-such-host.invalid/"),
        ("ftp scheme", "ftp://example.org/hook"),
        ("file scheme", "file:///etc/passwd"),
        ("javascript", "javascript:alert(1)"),
        ("credentials", "http://user:secret@example.org/"),
        ("blank inside", "http://exa mple.org/"),
        ("too long", "http://example.org/" + "a" * 3000),
    ]
]

BODIES = [
    Case("not JSON", raw=b"hello", field="body"),
    Case("invalid UTF-8", raw=b'{"source": "\xff\xfe.mp4"}', status=400, field="body"),
    Case("JSON array", raw=b"[1, 2]", field="body"),
    Case("empty body", raw=b"", field="body"),
    Case("trailing garbage", raw=b'{"source": "good/talk.mp4"} xyz', field="body"),
    Case("deeply nested arrays", raw=b"[" * 30000 + b"]" * 30000, status=400, field="body"),
    Case("deeply nested in a field",
         raw=b'{"source": "good/talk.mp4", "start": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001,
         status=400, field="body"),
    Case("nested a little in a field",
         raw=b'{"source": "good/talk.mp4", "start": ' + b'{"a": ' * 50 + b"1" + b"}" * 51,
         field="start"),
    Case("body over 64 KiB", clip(filename="f" * 70_000), status=413, field="body"),
    Case("chunked body over 64 KiB", raw=b"chunked", status=413, field="body"),
    Case("text/plain body", raw=b'{"source": "good/talk.mp4"}',
         headers={"Content-Type": "text/plain"}, field="body"),
    Case("Idempotency-Key of 300 chars", clip(), headers={"Idempotency-Key": "k" * 300},
         field="idempotency-key"),
]  # fmt: skip

QUERIES = [
    Case(f"near={value}", method="GET", path=f"/v1/sources/{GOOD}?near={value}", field="near")
    for value in ("nan", "NaN", "inf", "-inf", "infinity", "1e308", "-1", "abc", "", "1e999")
] + [
    Case("11 near points", method="GET",
         path=f"/v1/sources/{GOOD}?" + "&".join(["near=1"] * 11), field="near"),
    Case("limit 0", method="GET", path="/v1/sources?limit=0", field="limit"),
    Case("limit huge", method="GET", path="/v1/sources?limit=99999999999999999999",
         field="limit"),
    Case("limit nan", method="GET", path="/v1/sources?limit=nan", field="limit"),
    Case("prefix dot-dot", method="GET", path="/v1/sources?prefix=../", field="prefix"),
    Case("prefix RLO", method="GET", path="/v1/sources?prefix=a%E2%80%AE", field="prefix"),
    Case("source key dot-dot", method="GET", path="/v1/sources/a/%2e%2e/b.mp4", field="key"),
    Case("source key NUL", method="GET", path="/v1/sources/a%00b.mp4", field="key"),
    Case("clip id garbage", method="GET", path="/v1/clips/clp_..%00%E2%80%AE", status=404,
         field="id"),
]  # fmt: skip

# Files uploaded as sources: what FFmpeg must refuse, whatever the name says.
HOSTILE_MEDIA: dict[str, bytes] = {
    "text.mp4": b"this is not a video\n" * 10,
    "empty.mp4": b"",
    "random.mp4": bytes(range(256)) * 64,
    "playlist.mp4": b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n"
    b"http://169.254.169.254/latest/meta-data/\n#EXT-X-ENDLIST\n",
    "playlist-local.mp4": b"#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",
    "concat.mp4": b"ffconcat version 1.0\nfile /etc/passwd\nfile 'http://127.0.0.1:6379/'\n",
    "session.mp4": b"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n"
    b"m=video 5004 RTP/AVP 96\n",
}
MEDIA = [
    Case(f"{name} submitted", clip(source=f"hostile/{name}"), field="source")
    for name in HOSTILE_MEDIA
] + [
    Case(f"{name} probed", method="GET", path=f"/v1/sources/hostile/{name}", field="source")
    for name in HOSTILE_MEDIA
] + [
    Case("AVI container", clip(source="hostile/made.avi"), field="source"),
    Case("PNG named .mp4", clip(source="hostile/image.mp4"), field="source"),
    Case("MP4 without moov", clip(source="hostile/truncated.mp4"), field="source"),
    Case("MP4 cut inside mdat", clip(source="hostile/cut.mp4", start=0, end=4),
         status=202, job_failure="any"),
]  # fmt: skip

CASES = RANGES + KEYS + FILENAMES + CALLBACKS + BODIES + QUERIES + MEDIA


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 80
    assert len({c.name for c in CASES}) == len(CASES)


@dataclass
class HostileApp:
    """The app on S3 with the good and hostile sources uploaded."""

    settings: Settings
    client: Any


def _make_media(folder: Path, media_h264_mp4: Any, media_truncated_mp4: Any,
                media_truncated_faststart_mp4: Any) -> dict[str, Path]:  # fmt: skip
    files = {}
    for name, data in HOSTILE_MEDIA.items():
        files[name] = folder / name
        files[name].write_bytes(data)
    avi = folder / "made.avi"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
         "testsrc2=size=64x36:rate=25:duration=1", "-c:v", "mjpeg", str(avi)],
        check=True,
    )  # fmt: skip
    png = folder / "image.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
         "testsrc2=size=64x36", "-frames:v", "1", "-f", "image2", "-c:v", "png", str(png)],
        check=True,
    )  # fmt: skip
    files["made.avi"] = avi
    files["image.mp4"] = png
    files["truncated.mp4"] = Path(shutil.copy(media_truncated_mp4.path, folder / "t.mp4"))
    files["cut.mp4"] = Path(shutil.copy(media_truncated_faststart_mp4.path, folder / "c.mp4"))
    return files


@pytest.fixture(scope="module")
def hostile_app(
    redis_server: RedisServer,
    s3_server: S3Server,
    tmp_path_factory: pytest.TempPathFactory,
    media_h264_mp4: Any,
    media_h264_mov: Any,
    media_truncated_mp4: Any,
    media_truncated_faststart_mp4: Any,
) -> Iterator[HostileApp]:
    from fastapi.testclient import TestClient

    from api.app import create_app

    redis_server.start()
    redis_server.flush()
    root = tmp_path_factory.mktemp("hostile")
    settings = s3_settings(
        s3_server, redis_url=redis_server.url, api_keys=api_keys_setting(), work_dir=root / "work"
    )
    storage = open_storage(settings)
    storage.ensure_buckets()
    storage.put_source(GOOD, media_h264_mp4.path)
    storage.put_source(PAL, media_h264_mov.path)
    media = _make_media(root, media_h264_mp4, media_truncated_mp4, media_truncated_faststart_mp4)
    for name, path in media.items():
        storage.put_source(f"hostile/{name}", path)
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {API_KEYS['alice']}"
    yield HostileApp(settings, client)
    client.close()


def _send(app: HostileApp, case: Case) -> Any:
    headers = {"Content-Type": "application/json", **case.headers}
    if case.method == "GET":
        return app.client.get(case.path, headers=case.headers)
    if case.raw == b"chunked":
        chunks = (b'{"source": "good/talk.mp4", "filename": "' + b"f" * 1024 for _ in range(80))
        return app.client.post(case.path, content=chunks, headers=headers)
    content = case.raw if case.raw is not None else json.dumps(case.body).encode()
    return app.client.post(case.path, content=content, headers=headers)


def _run_jobs(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        conn = Redis.from_url(settings.redis_url)
        queues = get_queues(QUEUE_NAMES, conn)
        SimpleWorker(queues, connection=conn, serializer=JSONSerializer).work(burst=True)
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_request(
    hostile_app: HostileApp, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = _send(hostile_app, case)
    assert response.status_code < 500, (response.status_code, response.text)
    assert response.status_code == case.status, response.text
    if case.job_failure is not None:
        clip_id = response.json()["id"]
        _run_jobs(hostile_app.settings, monkeypatch)
        record = records.load(Redis.from_url(hostile_app.settings.redis_url), clip_id)
        assert record is not None and record.status == "failed", record
        assert record.error["code"] in ("invalid_media", "verification_failed", "engine_error")
        shown = hostile_app.client.get(f"/v1/clips/{clip_id}").json()
        assert shown["status"] == "failed" and shown["error"]["message"]
        return
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == case.status and problem["detail"]
    if case.field is not None:
        assert str(problem.get("field", "")).lower().startswith(case.field), problem

