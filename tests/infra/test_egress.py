"""Egress pools through real HTTP proxies on loopback (tests/fixtures/proxy.py): accounts pinned to
one proxy, a dead proxy's accounts moving (one retried call), clearance solved per egress through
that egress, and `{account}` credentials. The simulator cannot tell two loopback proxies apart, so
that a clearance is bound to an IP is taken from the solve requests, not from a refusal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.accounts import account_id_for
from core.settings import Settings
from infra.sim.server import SimServer
from infra.upstream.client import CurlUpstream
from infra.upstream.egress import EgressPool, egress_key, impersonation_for, redact
from tests.fixtures.proxy import Proxy
from tests.sim.helpers import CHAT, chat_body

TOKENS = [f"sim-super-egress-{i}" for i in range(12)]


@pytest.fixture
def proxies() -> Iterator[list[Proxy]]:
    started = [Proxy().start(), Proxy().start()]
    yield started
    for proxy in started:
        proxy.shutdown()


async def answer(upstream: CurlUpstream, token: str) -> bytes:
    response = await upstream.chat(token, chat_body("hi #sim tokens=2"))
    try:
        return b"".join([c async for c in response])
    finally:
        await response.aclose()


def through(proxy: Proxy) -> int:
    return sum(1 for target, _ in proxy.requests if target.endswith(CHAT))


async def test_accounts_are_pinned_and_spread_over_the_pool(sim: SimServer, proxies: list[Proxy]) -> None:
    urls = ",".join(p.url for p in proxies)
    upstream = CurlUpstream(
        Settings.from_env({"GROKGATE_UPSTREAM_URL": sim.url, "GROKGATE_PROXY_URLS": urls})
    )
    try:
        first = {t: upstream.pool.for_token(t).proxy for t in TOKENS}
        for token in TOKENS:
            await answer(upstream, token)
            await answer(upstream, token)
    finally:
        await upstream.aclose()
    assert {t: upstream.pool.for_token(t).proxy for t in TOKENS} == first  # stable
    assert through(proxies[0]) + through(proxies[1]) == 2 * len(TOKENS)
    assert through(proxies[0]) > 0 and through(proxies[1]) > 0  # both used
    for proxy in proxies:
        mine = [t for t in TOKENS if first[t] == proxy.url]
        assert through(proxy) == 2 * len(mine)


async def test_a_dead_proxy_cools_down_and_its_accounts_move(sim: SimServer, proxies: list[Proxy]) -> None:
    urls = ",".join(p.url for p in proxies)
    settings = Settings.from_env({"GROKGATE_UPSTREAM_URL": sim.url, "GROKGATE_PROXY_URLS": urls})
    upstream = CurlUpstream(settings)
    try:
        token = next(t for t in TOKENS if upstream.pool.for_token(t).proxy == proxies[0].url)
        proxies[0].stop()
        assert b'"token"' in await answer(upstream, token)  # one failed connect, then the other proxy
        assert upstream.pool.for_token(token).proxy == proxies[1].url
        assert upstream.pool.cooling()  # the dead one rests
        others = [t for t in TOKENS if upstream.pool.order(account_id_for(t))[0] == 1]
        assert all(upstream.pool.for_token(t).proxy == proxies[1].url for t in others)  # untouched
    finally:
        await upstream.aclose()
    assert through(proxies[1]) == 1


async def test_clearance_is_solved_per_egress_through_it(sim: SimServer, proxies: list[Proxy]) -> None:
    sim.config.challenge_all = True
    sim.config.statsig = "signed"
    urls = ",".join(p.url for p in proxies)
    settings = Settings.from_env(
        {"GROKGATE_UPSTREAM_URL": sim.url, "GROKGATE_PROXY_URLS": urls, "GROKGATE_FLARESOLVERR_URL": sim.url}
    )
    upstream = CurlUpstream(settings)
    try:
        by_proxy = {}
        for token in TOKENS:
            by_proxy.setdefault(upstream.pool.for_token(token).proxy, token)
        for token in by_proxy.values():
            assert b'"token"' in await answer(upstream, token)
    finally:
        await upstream.aclose()
    solved_through = sorted(r["proxy"]["url"] for r in sim.state.solve_requests)  # type: ignore[index]
    # The scraper's pseudo-account has an egress too: each proxy solved once at most, both solved.
    assert set(solved_through) == {p.url for p in proxies} and len(solved_through) == 2


async def test_account_placeholder_gives_per_account_credentials(
    sim: SimServer, proxies: list[Proxy]
) -> None:
    url = proxies[0].url.replace("http://", "http://user-{account}:secret@")
    upstream = CurlUpstream(Settings.from_env({"GROKGATE_UPSTREAM_URL": sim.url, "GROKGATE_PROXY_URLS": url}))
    try:
        await answer(upstream, TOKENS[0])
        await answer(upstream, TOKENS[1])
    finally:
        await upstream.aclose()
    users = {user for target, user in proxies[0].requests if target.endswith(CHAT)}
    assert users == {f"user-{account_id_for(TOKENS[0])}", f"user-{account_id_for(TOKENS[1])}"}
    a, b = (upstream.pool.for_token(t) for t in TOKENS[:2])
    assert a.key != b.key and a.key == egress_key(a.proxy)  # one egress (and clearance) per account


def test_pool_helpers() -> None:
    pool = EgressPool(["socks5://h:1", "http://u:p@h:2"])
    assert pool.proxies[0] == "socks5h://h:1"
    assert redact("http://u:p@h:2") == "http://***@h:2" and redact(None) == "direct"
    assert EgressPool([]).for_token("t").proxy is None
    targets = ["chrome120", "chrome136", "chrome146", "safari17_0"]
    assert impersonation_for("Mozilla/5.0 Chrome/140.0.0.0 Safari/537.36", "chrome", targets) == "chrome136"
    assert impersonation_for("Mozilla/5.0 Firefox/133.0", "chrome", targets) == "chrome"
    assert impersonation_for("Mozilla/5.0 Chrome/100.0", "chrome", targets) == "chrome"
