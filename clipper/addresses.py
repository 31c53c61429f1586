"""Which network addresses Clipper may connect to on a client's behalf (webhook callbacks).

Only globally routable unicast addresses pass. Refused: loopback, private, link-local,
shared (100.64.0.0/10, carrier-grade NAT), multicast, reserved, unspecified, and the
special-purpose blocks Python's `is_global` misses on 3.11.

IPv6 forms that carry an IPv4 address are judged by that IPv4 address, because a gateway on
the way delivers to it: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64
`64:ff9b::/96` (RFC 6052; Python 3.11 calls the whole prefix global, so
`64:ff9b::7f00:1` would reach 127.0.0.1), 6to4 `2002::/16` and Teredo `2001::/32` (both the
server and the client address must pass). The local-use NAT64 prefix `64:ff9b:1::/48`
(RFC 8215) is refused outright: what it translates to is the network's own choice.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

NAT64 = IPv6Network("64:ff9b::/96")
NAT64_LOCAL_USE = IPv6Network("64:ff9b:1::/48")
IPV4_COMPATIBLE = IPv6Network("::/96")

#: IPv4 blocks refused besides what `is_global` already excludes.
REFUSED_IPV4 = tuple(
    IPv4Network(block)
    for block in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the limited broadcast address
    )
)


def is_public_address(text: str) -> bool:
    """True when `text` is an IP address Clipper may connect to for a client."""
    try:
        address = ip_address(text)
    except ValueError:
        return False
    if isinstance(address, IPv4Address):
        return _public_ipv4(address)
    if address in NAT64_LOCAL_USE:
        return False
    embedded = embedded_ipv4(address)
    if embedded is not None:
        return all(_public_ipv4(v4) for v4 in embedded)
    return address.is_global and not (
        address.is_multicast
        or address.is_link_local
        or address.is_site_local
        or address.is_loopback
        or address.is_unspecified
        or address.is_reserved
    )


def embedded_ipv4(address: IPv6Address) -> list[IPv4Address] | None:
    """The IPv4 address(es) an IPv6 address carries (mapped, compatible, NAT64, 6to4,
    Teredo server and client); None for a plain IPv6 address."""
    low32 = IPv4Address(int(address) & 0xFFFFFFFF)
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in NAT64:
        return [low32]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        server, client = address.teredo
        return [server, client]
    if address in IPV4_COMPATIBLE and not (address.is_unspecified or address.is_loopback):
        return [low32]
    return None


def _public_ipv4(address: IPv4Address) -> bool:
    if not address.is_global or address.is_multicast or address.is_reserved:
        return False
    return not any(address in block for block in REFUSED_IPV4)
