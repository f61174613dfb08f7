"""Which addresses the URL fetcher may dial: IANA's special-purpose registries as tables.

An address is public when it is in no special-purpose block of IANA's IPv4 and IPv6
special-purpose address registries (RFC 6890 and its updates), is not multicast, and, for
IPv6, lies in global unicast space (2000::/3). Blocks that the registry marks globally
reachable (the anycast services, AS112, AMT, ORCHIDv2) are refused too: no image lives there.

IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-translated, IPv4-compatible, NAT64's
well-known prefix, 6to4) are judged by the IPv4 address they embed: `64:ff9b::a9fe:a9fe` is
169.254.169.254 on a NAT64 host, `2002:7f00:1::` is 127.0.0.1 behind a 6to4 relay. Teredo
(2001::/32) and NAT64's local-use prefix (64:ff9b:1::/48, whose layout is the operator's) are
refused whole.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IPv4 = ipaddress.IPv4Network
IPv6 = ipaddress.IPv6Network
Network = IPv4 | IPv6

# IANA IPv4 Special-Purpose Address Registry, plus multicast (224.0.0.0/4, RFC 5771).
IPV4_SPECIAL: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "this network (RFC 791)"),
    ("10.0.0.0/8", "private use (RFC 1918)"),
    ("100.64.0.0/10", "shared address space, CGNAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback (RFC 1122)"),
    ("169.254.0.0/16", "link local, cloud metadata (RFC 3927)"),
    ("172.16.0.0/12", "private use (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.0.0.0/29", "IPv4 service continuity prefix, DS-Lite (RFC 7335)"),
    ("192.0.0.8/32", "IPv4 dummy address (RFC 7600)"),
    ("192.0.0.9/32", "port control protocol anycast (RFC 7723)"),
    ("192.0.0.10/32", "traversal using relays around NAT anycast (RFC 8155)"),
    ("192.0.0.170/31", "NAT64/DNS64 discovery (RFC 8880)"),
    ("192.0.2.0/24", "documentation, TEST-NET-1 (RFC 5737)"),
    ("192.31.196.0/24", "AS112-v4 (RFC 7535)"),
    ("192.52.193.0/24", "AMT (RFC 7450)"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)"),
    ("192.168.0.0/16", "private use (RFC 1918)"),
    ("192.175.48.0/24", "direct delegation AS112 service (RFC 7534)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation, TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", "documentation, TEST-NET-3 (RFC 5737)"),
    ("224.0.0.0/4", "multicast (RFC 5771)"),
    ("240.0.0.0/4", "reserved (RFC 1112)"),
    ("255.255.255.255/32", "limited broadcast (RFC 919)"),
)

# IANA IPv6 Special-Purpose Address Registry, plus multicast and deprecated site-local.
IPV6_SPECIAL: tuple[tuple[str, str], ...] = (
    ("::1/128", "loopback (RFC 4291)"),
    ("::/128", "unspecified (RFC 4291)"),
    ("::ffff:0:0/96", "IPv4-mapped (RFC 4291): judged by its IPv4 address"),
    ("::ffff:0:0:0/96", "IPv4-translated (RFC 2765): judged by its IPv4 address"),
    ("::/96", "IPv4-compatible, deprecated (RFC 4291): judged by its IPv4 address"),
    ("64:ff9b::/96", "IPv4-IPv6 translation, NAT64 (RFC 6052): judged by its IPv4 address"),
    ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation (RFC 8215)"),
    ("100::/64", "discard-only (RFC 6666)"),
    ("100:0:0:1::/64", "dummy IPv6 prefix (RFC 9780)"),
    ("2001::/23", "IETF protocol assignments (RFC 2928)"),
    ("2001::/32", "Teredo (RFC 4380)"),
    ("2001:1::1/128", "port control protocol anycast (RFC 7723)"),
    ("2001:1::2/128", "traversal using relays around NAT anycast (RFC 8155)"),
    ("2001:1::3/128", "DNS-SD service registration protocol anycast (RFC 9665)"),
    ("2001:2::/48", "benchmarking (RFC 5180)"),
    ("2001:3::/32", "AMT (RFC 7450)"),
    ("2001:4:112::/48", "AS112-v6 (RFC 7535)"),
    ("2001:10::/28", "deprecated ORCHID (RFC 4843)"),
    ("2001:20::/28", "ORCHIDv2 (RFC 7343)"),
    ("2001:30::/28", "drone remote ID protocol entity tags (RFC 9374)"),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    ("2002::/16", "6to4 (RFC 3056): judged by its IPv4 address"),
    ("2620:4f:8000::/48", "direct delegation AS112 service (RFC 7534)"),
    ("3fff::/20", "documentation (RFC 9637)"),
    ("5f00::/16", "segment routing SIDs (RFC 9602)"),
    ("fc00::/7", "unique local (RFC 4193)"),
    ("fe80::/10", "link-local unicast (RFC 4291)"),
    ("fec0::/10", "site-local, deprecated (RFC 3879)"),
    ("ff00::/8", "multicast (RFC 4291)"),
)

_V4 = tuple(IPv4(net) for net, _ in IPV4_SPECIAL)
_V6 = tuple(IPv6(net) for net, _ in IPV6_SPECIAL)
_GLOBAL_UNICAST = IPv6("2000::/3")
# (prefix, shift): the IPv4 address is (int(ip) >> shift) & 0xFFFFFFFF
_EMBEDDING: tuple[tuple[IPv6, int], ...] = (
    (IPv6("::ffff:0:0/96"), 0),
    (IPv6("::ffff:0:0:0/96"), 0),
    (IPv6("64:ff9b::/96"), 0),
    (IPv6("::/96"), 0),
    (IPv6("2002::/16"), 80),
)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form stands for (mapped, translated, compatible, NAT64, 6to4)."""
    if int(ip) <= 1:
        return None  # :: and ::1 are themselves, not IPv4-compatible forms
    for prefix, shift in _EMBEDDING:
        if ip in prefix:
            return ipaddress.IPv4Address((int(ip) >> shift) & 0xFFFFFFFF)
    return None


def special_block(address: str) -> str | None:
    """Why `address` is not public (the registry entry), or None when it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    via = ""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is None:
            for net, (text, why) in zip(_V6, IPV6_SPECIAL, strict=True):
                if ip in net:
                    return f"{text}: {why}"
            return None if ip in _GLOBAL_UNICAST else "outside IPv6 global unicast (2000::/3)"
        ip, via = inner, f"embeds {inner}, "
    for net4, (text, why) in zip(_V4, IPV4_SPECIAL, strict=True):
        if ip in net4:
            return f"{via}{text}: {why}"
    return None


def is_public(address: str, allow: Sequence[Network] = ()) -> bool:
    """Whether the fetcher may dial `address`; `allow` lists networks treated as public (tests)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    inner = embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    if any(ip in net or (inner is not None and inner in net) for net in allow):
        return True
    return special_block(address) is None
