"""The SSRF guard's address check as a table over IANA's special-purpose registries (issue 18, row 2).

Every block is refused at its first, middle and last address; every IPv6 form that embeds an
IPv4 address is judged by that address (each IPv4 block through each form); the neighbours of
the blocks, and well-known public addresses in every form, pass.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.special_addresses import IPV4_SPECIAL, IPV6_SPECIAL, embedded_ipv4, is_public, special_block

EMBEDDING = {"::ffff:0:0/96", "::ffff:0:0:0/96", "::/96", "64:ff9b::/96", "2002::/16"}


def samples(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[str]:
    first, last = int(net.network_address), int(net.broadcast_address)
    cls = type(net.network_address)
    return [str(cls(first)), str(cls((first + last) // 2)), str(cls(last))]


def forms(v4: str) -> list[str]:
    """`v4` written in every IPv6 form that carries an IPv4 address."""
    n = int(ipaddress.IPv4Address(v4))
    return [
        str(ipaddress.IPv6Address((0xFFFF << 32) | n)),  # ::ffff:a.b.c.d, mapped
        str(ipaddress.IPv6Address((0xFFFF << 48) | n)),  # ::ffff:0:a.b.c.d, translated
        str(ipaddress.IPv6Address(n)),  # ::a.b.c.d, compatible
        str(ipaddress.IPv6Address((0x64FF9B << 96) | n)),  # 64:ff9b::a.b.c.d, NAT64
        str(ipaddress.IPv6Address((0x2002 << 112) | (n << 80))),  # 2002:aabb:ccdd::, 6to4
    ]


@pytest.mark.parametrize(("block", "why"), IPV4_SPECIAL, ids=[b for b, _ in IPV4_SPECIAL])
def test_every_ipv4_special_block_is_refused_directly_and_in_every_ipv6_form(block: str, why: str) -> None:
    for address in samples(ipaddress.IPv4Network(block)):
        assert not is_public(address), address
        for form in forms(address):
            if form in ("::", "::1"):
                continue  # 0.0.0.0 and 0.0.0.1 as compatible forms are :: and ::1 themselves
            assert not is_public(form), (address, form)
            reason = special_block(form)
            assert reason is not None and address in reason, (form, reason)


@pytest.mark.parametrize(
    ("block", "why"),
    [(b, w) for b, w in IPV6_SPECIAL if b not in EMBEDDING],
    ids=[b for b, _ in IPV6_SPECIAL if b not in EMBEDDING],
)
def test_every_ipv6_special_block_is_refused(block: str, why: str) -> None:
    for address in samples(ipaddress.IPv6Network(block)):
        if embedded_ipv4(ipaddress.IPv6Address(address)) is not None:
            continue  # inside ::/96 (e.g. ::/128 is itself): covered by the IPv4 table
        assert not is_public(address), address


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a9fe:a9fe",  # the issue's repro: 169.254.169.254 through NAT64
        "64:ff9b::7f00:1",
        "2002:a9fe:a9fe::1",
        "2002:c0a8:101::",
        "::169.254.169.254",
        "::ffff:0:169.254.169.254",
        "::ffff:10.0.0.1",
        "64:ff9b:1::a9fe:a9fe",  # local-use NAT64: refused whole
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "fd00:ec2::254",  # the EC2 metadata service over IPv6
        "fe80::1%eth0",
        "fec0::1",
        "ff02::1",
        "::",
        "::1",
        "4000::1",  # outside 2000::/3: not allocated
    ],
)
def test_the_issues_forms_and_friends_are_refused(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "100.63.255.255",  # just below shared space
        "100.128.0.0",  # just above it
        "172.32.0.0",
        "198.20.0.0",  # just past benchmarking
        "192.0.1.0",
        "11.0.0.1",
        "223.255.255.255",
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "2a00:1450::1",
        *forms("8.8.8.8"),  # a public IPv4 address is public in every form
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert is_public(address), special_block(address)


def test_allow_lists_networks_treated_as_public_in_every_form() -> None:
    allow = [ipaddress.ip_network("127.0.0.2/32")]
    assert is_public("127.0.0.2", allow) and is_public("::ffff:127.0.0.2", allow)
    assert not is_public("127.0.0.1", allow)


@given(st.ip_addresses(v=4))
def test_whatever_python_calls_not_global_is_refused(ip: ipaddress.IPv4Address) -> None:
    if not ip.is_global or ip.is_multicast:
        assert not is_public(str(ip))


@given(st.ip_addresses(v=6))
def test_ipv6_outside_global_unicast_and_the_registry_is_refused(ip: ipaddress.IPv6Address) -> None:
    if embedded_ipv4(ip) is None and (not ip.is_global or ip.is_multicast):
        assert not is_public(str(ip))
