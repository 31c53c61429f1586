"""Per-client webhook secrets in a real Redis: made once, rotated with an overlap."""

from __future__ import annotations

import base64
import threading

from redis import Redis

from workers import keys
from workers.delivery import secrets

NOW = 1_800_000_000.0
DAY = 24 * 3600


def test_a_secret_is_made_once_per_client_and_kept(redis_url: str) -> None:
    conn = Redis.from_url(redis_url)
    alice = secrets.load(conn, "alice", now_unix=NOW)
    assert alice.current.startswith("whsec_")
    assert len(base64.b64decode(alice.current.removeprefix("whsec_"))) == 32
    assert alice.current_since == "2027-01-15T08:00:00+00:00"
    assert secrets.load(conn, "alice", now_unix=NOW + 60) == alice
    assert secrets.load(conn, "bob", now_unix=NOW).current != alice.current
    assert alice.signing(NOW) == [alice.current]
    assert conn.ttl(keys.webhook_secret("alice")) == -1  # lives as long as the client


def test_racing_first_reads_agree_on_one_secret(redis_url: str) -> None:
    found: list[str] = []

    def read() -> None:
        found.append(secrets.load(Redis.from_url(redis_url), "carol").current)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1


def test_rotation_signs_with_both_secrets_until_the_overlap_ends(redis_url: str) -> None:
    conn = Redis.from_url(redis_url)
    old = secrets.load(conn, "alice", now_unix=NOW)
    rotated = secrets.rotate(conn, "alice", overlap_seconds=DAY, now_unix=NOW + 10)
    assert rotated.current != old.current
    assert rotated.previous == old.current
    assert rotated.signing(NOW + 11) == [rotated.current, old.current]
    assert rotated.previous_valid_until(NOW + 11) == "2027-01-16T08:00:10+00:00"
    assert secrets.load(conn, "alice", now_unix=NOW + 12) == rotated  # what deliveries read
    # The overlap is over: the new secret alone.
    assert rotated.signing(NOW + 10 + DAY) == [rotated.current]
    assert rotated.previous_valid_until(NOW + 10 + DAY) is None


def test_a_second_rotation_keeps_only_the_secret_it_replaced(redis_url: str) -> None:
    conn = Redis.from_url(redis_url)
    first = secrets.load(conn, "alice", now_unix=NOW).current
    second = secrets.rotate(conn, "alice", overlap_seconds=DAY, now_unix=NOW).current
    third = secrets.rotate(conn, "alice", overlap_seconds=DAY, now_unix=NOW + 5)
    assert third.signing(NOW + 6) == [third.current, second]
    assert first not in third.signing(NOW + 6)


def test_rotation_without_overlap_drops_the_old_secret_at_once(redis_url: str) -> None:
    conn = Redis.from_url(redis_url)
    secrets.load(conn, "alice", now_unix=NOW)
    secrets.rotate(conn, "alice", overlap_seconds=DAY, now_unix=NOW)
    leaked = secrets.rotate(conn, "alice", overlap_seconds=0, now_unix=NOW + 1)
    assert leaked.previous is None
    assert leaked.signing(NOW + 1) == [leaked.current]
    assert secrets.load(conn, "alice") == leaked
