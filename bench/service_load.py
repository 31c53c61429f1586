"""Answer times under load: an existing clip asked again, and bursts of simultaneous submits."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench import media
from bench.http_burst import Answer, Connections, build_request
from bench.service_common import (
    SHORT_KEY,
    Row,
    clip_body,
    console,
    met_text,
    ms_text,
    percentile,
)
from bench.service_stack import CLIENT, ServiceStack
from tests.fixtures.app import API_KEYS


def measure_existing(stack: ServiceStack, body: dict[str, Any], count: int) -> Row:
    """The identical request again, `count` times one after the other (dedup: 200)."""
    conns = _connections(stack, 1)
    token = API_KEYS[CLIENT]
    request = build_request(stack.api_url[7:], "POST", "/v1/clips", token, body)
    try:
        conns.burst([request] * 1)  # warm-up
        answers = [conns.burst([request])[0] for _ in range(count)]
    finally:
        conns.close()
    times = [a.seconds for a in answers]
    not_200 = sum(a.status != 200 for a in answers)
    p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
    return (
        "existing clip: identical POST again (answer time)",
        f"p50 {ms_text(p50)} / p99 {ms_text(p99)}",
        "< 50 ms",
        met_text(p99 < 0.05 and not_200 == 0),
        f"{count} sequential requests, {not_200} not 200",
    )


def measure_bursts(
    stack: ServiceStack, clients: int, rounds: int, api_workers: list[int]
) -> list[Row]:
    """`rounds` bursts of `clients` simultaneous new submits (distinct frames), per API setup.

    Each setup also gets bursts of `GET /healthz` (no auth, no Redis, no S3): the floor any
    endpoint of this process can reach on this machine.
    """
    rows: list[Row] = []
    stack.stop_worker()  # the burst measures API + Redis; queued jobs just wait
    frames = iter(range(1, 10**9))

    def submits() -> list[bytes]:
        requests = []
        for _ in range(clients):
            # 1-frame steps: every request selects different frames (no dedup).
            start = 1 + (next(frames) % 1200) / media.FPS + 0.005
            body = clip_body(SHORT_KEY, start, "fast") | {"priority": "bulk"}
            requests.append(_request(stack, "POST", "/v1/clips", body))
        return requests

    def healthz() -> list[bytes]:
        return [_request(stack, "GET", "/healthz")] * clients

    for workers in api_workers:
        stack.start_api(workers=workers, s3_via_proxy=False)
        conns = _connections(stack, clients)
        spread = "/".join(map(str, stack.connections_per_process()))
        try:
            for what, make, expected in (("GET /healthz", healthz, 200), ("submit", submits, 202)):
                cpu_before = stack.cpu_seconds()
                times, statuses = _bursts(conns, make, rounds, f"{what}, {workers} API processes")
                cpu = _cpu_per_request(cpu_before, stack.cpu_seconds(), (rounds + 1) * clients)
                p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
                floor = what != "submit"
                rows.append(
                    (
                        f"{'floor: ' if floor else ''}{what}, burst of {clients} simultaneous "
                        f"{'requests' if floor else 'new clips'}, "
                        f"`clipper api --workers {workers}`",
                        f"p50 {ms_text(p50)} / p99 {ms_text(p99)}",
                        "" if floor else "p99 < 50 ms",
                        "" if floor else met_text(p99 < 0.05 and statuses == {expected}),
                        f"{rounds} bursts x {clients} after 1 warm-up burst; "
                        f"statuses {sorted(statuses)}; CPU per request {cpu}; "
                        f"connections per API process {spread}",
                    )
                )
        finally:
            conns.close()
    return rows


def _cpu_per_request(before: dict[str, float], after: dict[str, float], requests: int) -> str:
    """'API 4.1 ms, S3 1.2 ms, Redis 0.3 ms' (clock-tick resolution: 10 ms over all requests)."""
    return ", ".join(
        f"{name} {(after[name] - before[name]) / requests * 1000:.1f} ms"
        for name in ("api", "s3", "redis")
    )


def _bursts(
    conns: Connections, make: Callable[[], list[bytes]], rounds: int, label: str
) -> tuple[list[float], set[int]]:
    """Answer times and statuses of `rounds` bursts (after one warm-up burst, not counted)."""
    times: list[float] = []
    statuses: set[int] = set()
    for round_no in range(rounds + 1):
        answers: list[Answer] = conns.burst(make())
        time.sleep(0.5)  # let the API settle (logs, GC) between bursts
        if round_no == 0:
            continue  # the first burst warms the API processes (imports, pools, caches)
        batch = [a.seconds for a in answers]
        times += batch
        statuses |= {a.status for a in answers}
        console.print(
            f"burst {round_no} ({label}): "
            f"p50 {ms_text(percentile(batch, 0.5))}, max {ms_text(max(batch))}"
        )
    return times, statuses


def _connections(stack: ServiceStack, count: int) -> Connections:
    host, port = stack.api_url[7:].split(":")
    return Connections(host, int(port), count)


def _request(stack: ServiceStack, method: str, path: str, body: Any = None) -> bytes:
    return build_request(stack.api_url[7:], method, path, API_KEYS[CLIENT], body)
