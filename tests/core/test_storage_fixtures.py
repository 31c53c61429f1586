"""The service fixtures themselves: Redis can be stopped and restarted, the proxy counts bytes."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import redis

from clipper.storage.s3 import S3Storage
from tests.fixtures.services import CountingProxy, RedisServer, S3Server, s3_settings


def test_redis_stop_and_start(redis_server: RedisServer, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    client.set("k", "v")
    redis_server.stop()
    try:
        assert not redis_server.running
        with pytest.raises(redis.ConnectionError):
            client.ping()
    finally:
        redis_server.start()
    assert client.ping()
    assert client.get("k") is None  # no persistence: a restart starts empty


def test_proxy_counts_bytes_served(
    s3_server: S3Server, s3_proxy: CountingProxy, tmp_path: Path
) -> None:
    storage = S3Storage(s3_settings(s3_server, s3_endpoint=s3_proxy.endpoint,
                                    s3_public_endpoint=s3_proxy.endpoint))  # fmt: skip
    storage.ensure_buckets()
    data = os.urandom(300_000)
    (tmp_path / "f").write_bytes(data)
    storage.put_clip("f.mp4", tmp_path / "f", metadata={}, content_type="video/mp4")
    url, _ = storage.download_url("clips", "f.mp4", filename="f.mp4", ttl_seconds=60)
    s3_proxy.reset()
    response = httpx.get(url, headers={"Range": "bytes=0-9999"})
    assert response.status_code == 206
    # The 10,000 body bytes plus one response head (well under 2 kB).
    assert 10_000 < s3_proxy.bytes_to_client < 12_000
