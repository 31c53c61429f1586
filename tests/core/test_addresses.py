"""Which addresses a webhook may go to (clipper.addresses): pure, table-driven."""

from __future__ import annotations

import pytest

from clipper.addresses import embedded_ipv4, is_public_address


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001:82b::200e",
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8
        "::ffff:8.8.8.8",  # IPv4-mapped public
        "2002:808:808::1",  # 6to4 of 8.8.8.8
        "2001:0:5db8:d822:0:f7f7:f7f7:f7f7",  # Teredo: server 93.184.216.34, client 8.8.8.8
    ],
)  # fmt: skip
def test_public_addresses_pass(address: str) -> None:
    assert is_public_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "100.127.255.254", "0.0.0.0", "0.1.2.3", "224.0.0.1", "239.255.255.250",
        "255.255.255.255", "240.0.0.1", "192.0.0.8", "192.0.2.1", "198.18.0.1", "198.51.100.7",
        "203.0.113.9", "192.88.99.1",
        "::1", "::", "fe80::1", "fe80::1%eth0", "fec0::1", "fc00::1", "fd12:3456::1",
        "ff02::1", "ff0e::1", "2001:db8::1", "100::1",
        "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::a00:1",  # NAT64 of internal v4
        "64:ff9b:1::808:808",  # local-use NAT64: refused whatever it embeds
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1", "::a00:1",
        "2002:7f00:1::", "2002:a00:1::1", "2002:a9fe:a9fe::",
        "2001:0:5db8:d822:0:f5ff:f5ff:fffe",  # Teredo client 10.0.0.1
        "2001:0:a00:1:0:f7f7:f7f7:f7f7",  # Teredo server 10.0.0.1
        "not an address", "", "1.2.3", "::g",
    ],
)  # fmt: skip
def test_internal_and_special_addresses_are_refused(address: str) -> None:
    assert not is_public_address(address)


def test_embedded_ipv4_forms() -> None:
    from ipaddress import IPv4Address, IPv6Address

    def v4(text: str) -> list[str] | None:
        found = embedded_ipv4(IPv6Address(text))
        return None if found is None else [str(a) for a in found]

    assert v4("::ffff:1.2.3.4") == ["1.2.3.4"]
    assert v4("64:ff9b::102:304") == ["1.2.3.4"]
    assert v4("2002:102:304::") == ["1.2.3.4"]
    assert v4("::102:304") == ["1.2.3.4"]
    assert v4("2001:0:5db8:d822:0:f5ff:f5ff:fffe") == ["93.184.216.34", "10.0.0.1"]
    assert v4("2606:4700::1111") is None and v4("::1") is None
    assert IPv4Address("1.2.3.4")  # the helper returns ipaddress objects
