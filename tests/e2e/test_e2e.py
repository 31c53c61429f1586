"""End to end: the API over HTTP, a real `clipper worker`, real Redis and storage (local, S3).

Submit → progress → succeeded → download through the signed link → frames checked against
the source; Range, expired and tampered links; dedup across requests and clients.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from tests.fixtures.app import ServiceStack, upload_source
from tests.framecheck import decode_errors, expected_range, frame_psnr, frame_timestamps

pytestmark = pytest.mark.slow

#: A shifted frame scores ~24 dB on testsrc2; a re-encoded matching one ~45 dB or more.
MATCH_PSNR_DB = 35.0


def _tamper(url: str) -> str:
    """The same link with one character of its signature changed."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = ("X-Amz-Signature", "sig")
    changed = []
    for name, value in query:
        if name in names:
            value = ("0" if value[0] != "0" else "1") + value[1:]
        changed.append((name, value))
    assert changed != query, "no signature parameter found"
    return urlunsplit(parts._replace(query=urlencode(changed)))


@pytest.fixture(scope="module")
def source(clip_stack: ServiceStack, media_h264_mp4: Any) -> str:
    """The 5 s H.264 test source, uploaded once per stack."""
    key = f"press/{uuid.uuid4().hex[:8]}/briefing.mp4"
    upload_source(clip_stack.settings, key, media_h264_mp4.path)
    return key


@pytest.mark.parametrize("accuracy", ["exact", "fast"])
def test_clip_end_to_end(
    clip_stack: ServiceStack, source: str, media_h264_mp4: Any, tmp_path: Path, accuracy: str
) -> None:
    client = clip_stack.client("alice")
    start, end = 1.2, 3.5
    submitted = client.post(
        "/v1/clips", json={"source": source, "start": start, "end": end, "accuracy": accuracy}
    )
    assert submitted.status_code == 202, submitted.text
    clip_id = submitted.json()["id"]
    assert submitted.json()["status"] == "queued"
    seen = set()
    deadline = time.monotonic() + 60
    while True:
        clip = client.get(f"/v1/clips/{clip_id}").json()
        seen.add((clip["status"], (clip["progress"] or {}).get("phase")))
        if clip["status"] not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, clip_stack.logs()
        time.sleep(0.05)
    assert clip["status"] == "succeeded", (clip, clip_stack.logs())
    assert clip["progress"] == {"phase": "done", "percent": 100.0, "eta_seconds": 0}
    assert all(status in ("queued", "running", "succeeded") for status, _ in seen)
    result = clip["result"]
    accuracy_report = result["accuracy"]
    assert result["size_bytes"] > 0
    assert accuracy_report["accuracy"] == accuracy

    out = tmp_path / "clip.mp4"
    response = httpx.get(result["download_url"], timeout=30)
    assert response.status_code == 200, response.text
    out.write_bytes(response.content)
    assert len(response.content) == result["size_bytes"]
    assert "attachment" in response.headers["content-disposition"]

    source_ts = frame_timestamps(media_h264_mp4.path)
    first, stop = expected_range(source_ts, start, end)
    delivered = frame_timestamps(out)
    assert decode_errors(out) == ""
    if accuracy == "exact":
        assert len(delivered) == stop - first
        assert frame_psnr(out, 0, media_h264_mp4.path, first) > MATCH_PSNR_DB
        assert frame_psnr(out, len(delivered) - 1, media_h264_mp4.path, stop - 1) > MATCH_PSNR_DB
    else:
        # fast starts at the keyframe at or before the in-point and says where.
        delivered_first = accuracy_report["segments"][0]["delivered_first"]["frame"]
        assert delivered_first <= first
        assert frame_psnr(out, 0, media_h264_mp4.path, delivered_first) > MATCH_PSNR_DB
        assert len(delivered) >= stop - first

    # Resumable download: a Range request gets 206 and exactly those bytes.
    ranged = httpx.get(result["download_url"], headers={"Range": "bytes=100-199"}, timeout=30)
    assert ranged.status_code == 206
    assert ranged.content == out.read_bytes()[100:200]
    assert ranged.headers["content-range"].startswith("bytes 100-199/")

    # /download redirects to a fresh link that works too.
    redirect = client.get(f"/v1/clips/{clip_id}/download", follow_redirects=False)
    assert redirect.status_code == 307
    assert httpx.get(redirect.headers["location"], timeout=30).content == out.read_bytes()

    # A tampered link is refused.
    assert httpx.get(_tamper(result["download_url"]), timeout=30).status_code == 403


def test_expired_link_refused(clip_stack: ServiceStack, source: str) -> None:
    client = clip_stack.client("alice")
    full = client.post("/v1/clips", json={"source": source}).json()
    assert full["status"] == "succeeded"
    storage = clip_stack.storage
    url, _ = storage.download_url("sources", source, filename="x.mp4", ttl_seconds=3)
    assert httpx.get(url, headers={"Range": "bytes=0-9"}, timeout=30).status_code == 206
    time.sleep(4.2)
    assert httpx.get(url, timeout=30).status_code == 403


def test_dedup_and_privacy(clip_stack: ServiceStack, source: str) -> None:
    alice, bob = clip_stack.client("alice"), clip_stack.client("bob")
    body = {"source": source, "start": 0.5, "end": 2.0, "accuracy": "fast"}
    first = alice.post("/v1/clips", json=body)
    assert first.status_code == 202
    done = clip_stack.wait_for(alice, first.json()["id"])
    assert done["status"] == "succeeded", clip_stack.logs()

    started = time.monotonic()
    again = alice.post("/v1/clips", json=body)
    elapsed = time.monotonic() - started
    assert again.status_code == 200
    assert again.json()["id"] == done["id"]
    assert again.json()["result"]["download_url"]
    assert elapsed < 1.0

    # Bob cannot see Alice's clip ...
    assert bob.get(f"/v1/clips/{done['id']}").status_code == 404
    assert bob.get(f"/v1/clips/{done['id']}/download").status_code == 404
    # ... but his identical request is served from the same stored bytes at once.
    his = bob.post("/v1/clips", json=body)
    assert his.status_code == 200
    assert his.json()["id"] != done["id"]
    alice_bytes = httpx.get(done["result"]["download_url"], timeout=30).content
    bob_bytes = httpx.get(his.json()["result"]["download_url"], timeout=30).content
    assert alice_bytes == bob_bytes
