"""Callback URLs: every resolved address is checked, and delivery connects only to checked
addresses, trying the next when one refuses the connection."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from clipper.errors import UnsafeInput
from clipper.settings import Settings
from workers import webhooks


def _resolving_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> None:
    def fake_getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)


def test_one_internal_address_among_public_ones_refuses_the_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolving_to(monkeypatch, "93.184.216.34", "10.0.0.1")
    with pytest.raises(UnsafeInput) as err:
        webhooks.checked_addresses("https://hooks.example.org/x", allow_private=False)
    assert err.value.field == "callback_url"
    _resolving_to(monkeypatch, "2606:2800:220:1::", "64:ff9b::7f00:1")  # NAT64 of 127.0.0.1
    with pytest.raises(UnsafeInput):
        webhooks.checked_addresses("https://hooks.example.org/x", allow_private=False)


def test_every_checked_address_is_kept_in_order_once(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving_to(monkeypatch, "93.184.216.34", "93.184.216.35", "93.184.216.34")
    found = webhooks.checked_addresses("https://hooks.example.org/x", allow_private=False)
    assert found == ["93.184.216.34", "93.184.216.35"]


class _Hook(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_POST(self) -> None:
        _Hook.seen.append(self.headers["Host"])
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_delivery_tries_the_next_checked_address(receiver: int) -> None:
    # 127.0.0.2 is loopback too but nothing listens there: the connection is refused.
    url = f"http://hooks.example.org:{receiver}/x"
    status = webhooks._send_to_first_answering(
        url, ["127.0.0.2", "127.0.0.1"], b"{}", {}, Settings()
    )
    assert status == 204
    assert _Hook.seen[-1] == f"hooks.example.org:{receiver}"  # the name, not the address
