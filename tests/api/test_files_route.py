"""The files route (local backend's signed links) over real HTTP: ranges, If-Range, refusals."""

from __future__ import annotations

import hashlib
import http.client
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import SecretStr

from clipper.settings import Settings
from clipper.storage.links import build_local_link
from clipper.storage.local import LocalStorage
from tests.fixtures.services import FilesServer, local_settings

SIZE = 100_000


@pytest.fixture
def served(files_api: FilesServer, tmp_path: Path) -> tuple[Settings, LocalStorage, bytes]:
    """A local store behind the files route, holding clips/c.mp4."""
    settings = local_settings(tmp_path / "storage", public_base_url=files_api.url)
    files_api.settings = settings
    storage = LocalStorage(settings)
    storage.ensure_buckets()
    data = os.urandom(SIZE)
    (tmp_path / "c").write_bytes(data)
    storage.put_clip("c.mp4", tmp_path / "c", metadata={}, content_type="video/mp4")
    return settings, storage, data


def _link(settings: Settings, key: str, *, expires_in: int = 600, filename: str = "c.mp4") -> str:
    return build_local_link(
        settings.public_base_url,
        settings.link_secret.get_secret_value(),
        "clips",
        key,
        filename=filename,
        expires_unix=int(time.time()) + expires_in,
    )


def _assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    return dict(body)


def test_headers_of_a_full_download(served: tuple[Settings, LocalStorage, bytes]) -> None:
    _, storage, data = served
    url, _ = storage.download_url("clips", "c.mp4", filename="Clip.mp4", ttl_seconds=600)
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["content-disposition"].startswith('attachment; filename="Clip.mp4"')


def test_if_range(served: tuple[Settings, LocalStorage, bytes]) -> None:
    settings, _, data = served
    url = _link(settings, "c.mp4")
    etag = httpx.head(url).headers["etag"]
    resumed = httpx.get(url, headers={"Range": "bytes=50000-", "If-Range": etag})
    assert resumed.status_code == 206
    assert resumed.headers["content-range"] == f"bytes 50000-{SIZE - 1}/{SIZE}"
    assert resumed.content == data[50000:]
    stale = httpx.get(url, headers={"Range": "bytes=50000-", "If-Range": '"0123abcd"'})
    assert stale.status_code == 200
    assert stale.content == data


def test_head_with_range(served: tuple[Settings, LocalStorage, bytes]) -> None:
    settings, _, _ = served
    response = httpx.head(_link(settings, "c.mp4"), headers={"Range": "bytes=0-99"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-99/{SIZE}"
    assert response.content == b""


def test_unsatisfiable_range(served: tuple[Settings, LocalStorage, bytes]) -> None:
    settings, _, _ = served
    response = httpx.get(_link(settings, "c.mp4"), headers={"Range": f"bytes={SIZE}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"


def test_refusals_are_problems(served: tuple[Settings, LocalStorage, bytes]) -> None:
    settings, _, _ = served
    url = _link(settings, "c.mp4")
    base = url.split("?", 1)[0]
    assert "expired" in str(_assert_problem(httpx.get(_link(settings, "c.mp4", expires_in=-5)),
                                            403)["detail"])  # fmt: skip
    _assert_problem(httpx.get(base), 403)  # unsigned
    _assert_problem(httpx.get(url.replace("sig=", "sig=00")), 403)
    _assert_problem(httpx.get(url.replace("expires=", "expires=9")), 403)
    _assert_problem(httpx.get(url + "&filename=evil.exe"), 403)  # a second filename wins
    _assert_problem(httpx.get(url.replace("sig=", "sig=%C3%A9")), 403)  # non-ASCII signature
    # The wrong secret: a link a stranger signed.
    forged = build_local_link(settings.public_base_url, "not-the-secret", "clips", "c.mp4",
                              filename="c.mp4", expires_unix=int(time.time()) + 60)  # fmt: skip
    _assert_problem(httpx.get(forged), 403)


def test_missing_object_is_404(served: tuple[Settings, LocalStorage, bytes]) -> None:
    settings, _, _ = served
    _assert_problem(httpx.get(_link(settings, "nope.mp4")), 404)


def test_validly_signed_hostile_key_still_refused(
    served: tuple[Settings, LocalStorage, bytes], tmp_path: Path
) -> None:
    settings, _, _ = served
    (tmp_path / "storage" / "secret.txt").write_bytes(b"top secret")
    for key in ["../secret.txt", "a/../../secret.txt", "..\\secret.txt"]:
        # http.client sends the path as is (httpx would remove the dot segments).
        parts = urlsplit(_link(settings, key))
        conn = http.client.HTTPConnection(parts.netloc, timeout=10)
        conn.request("GET", f"{parts.path}?{parts.query}")
        response = conn.getresponse()
        body = response.read()
        conn.close()
        assert response.status == 404, key
        # Our problem, so the signature passed and the storage layer refused the key.
        assert response.getheader("content-type") == "application/problem+json"
        assert b"top secret" not in body


def test_route_is_off_for_s3(
    served: tuple[Settings, LocalStorage, bytes], files_api: FilesServer
) -> None:
    settings, _, _ = served
    url = _link(settings, "c.mp4")
    files_api.settings = settings.model_copy(update={"storage": "s3"})
    _assert_problem(httpx.get(url), 404)


def test_links_of_the_previous_secret_verify_during_a_rotation(
    served: tuple[Settings, LocalStorage, bytes], files_api: FilesServer
) -> None:
    settings, _, data = served
    old_link = _link(settings, "c.mp4")
    old_secret = settings.link_secret
    # The rotation: a new secret signs, the old one only verifies.
    new_secret = SecretStr("the-new-link-secret-42")
    rotated = settings.model_copy(
        update={"link_secret": new_secret, "link_secret_previous": old_secret}
    )
    files_api.settings = rotated
    assert httpx.get(old_link).content == data
    fresh, _ = LocalStorage(rotated).download_url("clips", "c.mp4", filename="c.mp4",
                                                  ttl_seconds=60)  # fmt: skip
    assert "sig=" in fresh and fresh != old_link
    assert httpx.get(fresh).content == data
    # The previous secret never signs: a new link differs from one it would make.
    assert fresh.split("sig=")[1] != _link(settings, "c.mp4").split("sig=")[1]
    # An expired link of the previous secret is still expired, a forged one still forged.
    expired = _link(settings, "c.mp4", expires_in=-5)
    assert "expired" in str(_assert_problem(httpx.get(expired), 403)["detail"])
    _assert_problem(httpx.get(old_link.replace("sig=", "sig=00")), 403)
    # The rotation is over: the previous secret is removed, its links stop working.
    files_api.settings = rotated.model_copy(update={"link_secret_previous": None})
    assert "does not match" in str(_assert_problem(httpx.get(old_link), 403)["detail"])
    assert httpx.get(fresh).status_code == 200
