"""A minimal HTTP/1.1 client for latency bursts: pre-opened sockets, pre-built requests.

A Python HTTP client spends about a millisecond of CPU per request; with 50 clients on a
2-core machine that would be measured as server latency. Here every request is encoded
before the clock starts, all connections are open and idle (keep-alive), the burst is sent
in one loop and a selector timestamps each complete response, so the numbers are the
server's answer time plus the loopback, not the client's own work.
"""

from __future__ import annotations

import json
import selectors
import socket
import time
from dataclasses import dataclass
from typing import Any

RECV_BYTES = 65536
TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Answer:
    """One response: status, seconds from the burst's start, and the JSON body."""

    status: int
    seconds: float
    body: Any


def build_request(
    host_port: str, method: str, path: str, token: str, body: dict[str, Any] | None = None
) -> bytes:
    """An HTTP/1.1 keep-alive request with a bearer key and an optional JSON body."""
    payload = json.dumps(body).encode() if body is not None else b""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host_port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


#: Pause between opening two connections. Opened back to back, one uvicorn worker process
#: accepts most of them (it drains the shared listening socket's backlog in one wake-up: 43
#: of 50 was seen); spaced out, as clients arriving over time are, each connection goes to
#: whichever process the kernel wakes first.
CONNECT_SPACING_SECONDS = 0.01


class Connections:
    """`count` keep-alive connections to one server, opened `CONNECT_SPACING_SECONDS` apart."""

    def __init__(self, host: str, port: int, count: int) -> None:
        self.sockets = []
        for _ in range(count):
            sock = socket.create_connection((host, port), timeout=5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sockets.append(sock)
            time.sleep(CONNECT_SPACING_SECONDS)

    def burst(self, requests: list[bytes]) -> list[Answer]:
        """Send request i on connection i, all at once; answers in request order."""
        if len(requests) > len(self.sockets):
            raise ValueError("more requests than connections")
        selector = selectors.DefaultSelector()
        buffers: dict[int, bytearray] = {}
        answers: dict[int, Answer] = {}
        started = time.perf_counter()
        for i, request in enumerate(requests):
            self.sockets[i].sendall(request)
        for i in range(len(requests)):
            self.sockets[i].setblocking(False)
            selector.register(self.sockets[i], selectors.EVENT_READ, i)
            buffers[i] = bytearray()
        deadline = started + TIMEOUT_SECONDS
        try:
            while len(answers) < len(requests):
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"{len(requests) - len(answers)} answers missing")
                for key, _ in selector.select(timeout=1.0):
                    i = key.data
                    chunk = self.sockets[i].recv(RECV_BYTES)
                    if not chunk:
                        raise ConnectionError("the server closed a keep-alive connection")
                    buffers[i] += chunk
                    parsed = _complete(bytes(buffers[i]))
                    if parsed is not None:
                        answers[i] = Answer(parsed[0], time.perf_counter() - started, parsed[1])
                        selector.unregister(self.sockets[i])
        finally:
            selector.close()
            for sock in self.sockets:
                sock.setblocking(True)
        return [answers[i] for i in range(len(requests))]

    def close(self) -> None:
        """Close every connection."""
        for sock in self.sockets:
            sock.close()


def _complete(data: bytes) -> tuple[int, Any] | None:
    """(status, parsed JSON body) once a whole Content-Length response is in `data`."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if len(rest) < length:
        return None
    body = rest[:length]
    return status, json.loads(body) if body else None
