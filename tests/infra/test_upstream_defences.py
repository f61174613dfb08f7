"""The upstream client against a simulator that enforces grok.com's defences: a signed statsig
(checked with the simulator's own implementation) and a Cloudflare clearance from its FlareSolverr
endpoint, bound to the User-Agent that solved it. A build rotation or an expired clearance costs
one retried call; concurrent challenged calls share one solve."""

from __future__ import annotations

import asyncio

import pytest

from core.protocol.classify import Kind, UpstreamFailure
from core.settings import Settings
from infra.sim.server import SimServer
from infra.state.memory_records import MemoryRecords
from infra.upstream.client import CurlUpstream
from tests.sim.helpers import CHAT, chat_body

TOKEN = "sim-super-defended"
SOLVER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/146.0.0.0 Safari/537.36"
)


def defended(sim: SimServer) -> None:
    sim.config.statsig = "signed"
    sim.config.challenge_all = True
    sim.config.solver_user_agent = SOLVER_UA


def settings(url: str, **more: object) -> Settings:
    return Settings(upstream_url=url, assets_url=url, flaresolverr_url=url, **more)  # type: ignore[arg-type]


async def answer(upstream: CurlUpstream, prompt: str = "hi #sim tokens=3") -> bytes:
    response = await upstream.chat(TOKEN, chat_body(prompt))
    try:
        return b"".join([chunk async for chunk in response])
    finally:
        await response.aclose()


def chats(sim: SimServer) -> list[int | None]:
    return [r.status for r in sim.log if r.path == CHAT]


async def test_chat_passes_signed_statsig_and_clearance(sim: SimServer) -> None:
    defended(sim)
    upstream = CurlUpstream(settings(sim.url))
    try:
        assert b'"token"' in await answer(upstream)
        assert b'"token"' in await answer(upstream)
    finally:
        await upstream.aclose()
    # First call: challenged (403), one solve, retried with the solver's UA; then straight through.
    assert chats(sim) == [403, 200, 200] and sim.state.solves == 1
    sent = [r for r in sim.log if r.path == CHAT][-1]
    assert sent.headers["user-agent"] == SOLVER_UA and "cf_clearance=simcf." in sent.headers["cookie"]
    assert upstream.statsig.scrapes == 1


async def test_a_build_rotation_costs_one_retried_call(sim: SimServer) -> None:
    defended(sim)
    upstream = CurlUpstream(settings(sim.url))
    try:
        await answer(upstream)
        first_build = upstream.statsig.build
        sim.state.rotate_build()
        sim.log.clear()
        assert b'"token"' in await answer(upstream)
    finally:
        await upstream.aclose()
    assert chats(sim) == [403, 200]  # refused once (code 7), re-scraped, retried
    assert upstream.statsig.scrapes == 2 and upstream.statsig.build != first_build


async def test_an_expired_clearance_costs_one_retried_call_and_one_solve(sim: SimServer) -> None:
    defended(sim)
    upstream = CurlUpstream(settings(sim.url))
    try:
        await answer(upstream)
        sim.state.expire_clearances()
        sim.log.clear()
        assert b'"token"' in await answer(upstream)
    finally:
        await upstream.aclose()
    assert chats(sim) == [403, 200] and sim.state.solves == 2


async def test_concurrent_challenged_calls_share_one_solve(sim: SimServer) -> None:
    defended(sim)
    upstream = CurlUpstream(settings(sim.url))
    try:
        await answer(upstream)  # statsig inputs and a clearance in place
        sim.state.expire_clearances()
        results = await asyncio.gather(*(answer(upstream) for _ in range(8)))
    finally:
        await upstream.aclose()
    assert all(b'"token"' in r for r in results)
    assert sim.state.solves == 2  # the first call's, and one for all eight


async def test_a_clearance_is_shared_through_the_store(sim: SimServer) -> None:
    defended(sim)
    records = MemoryRecords()
    one, two = (
        CurlUpstream(settings(sim.url), records=records),
        CurlUpstream(settings(sim.url), records=records),
    )
    try:
        await answer(one)
        await answer(two)  # another instance: takes the stored clearance and statsig inputs
    finally:
        await one.aclose()
        await two.aclose()
    assert sim.state.solves == 1 and two.statsig.scrapes == 0


async def test_without_flaresolverr_a_challenge_is_a_clear_failure(sim: SimServer) -> None:
    defended(sim)
    upstream = CurlUpstream(Settings(upstream_url=sim.url, assets_url=sim.url))
    try:
        with pytest.raises(UpstreamFailure) as caught:
            await answer(upstream)
    finally:
        await upstream.aclose()
    # The statsig page itself sits behind the challenge: no value can be made.
    assert caught.value.kind in (Kind.CHALLENGE, Kind.TRANSIENT) and caught.value.reason


async def test_manual_statsig_refused_is_not_retried(sim: SimServer) -> None:
    sim.config.statsig = "signed"
    upstream = CurlUpstream(
        Settings(upstream_url=sim.url, assets_url=sim.url, statsig="manual", statsig_value="A" * 94)
    )
    try:
        with pytest.raises(UpstreamFailure) as caught:
            await answer(upstream)
    finally:
        await upstream.aclose()
    assert caught.value.kind is Kind.ANTI_BOT and chats(sim) == [403]


async def test_an_unreachable_flaresolverr_is_a_clear_error(sim: SimServer) -> None:
    from tests.fixtures.stores import free_port

    defended(sim)
    dead = f"http://127.0.0.1:{free_port()}"
    upstream = CurlUpstream(Settings(upstream_url=sim.url, assets_url=sim.url, flaresolverr_url=dead))
    try:
        with pytest.raises(UpstreamFailure) as caught:
            await answer(upstream)
    finally:
        await upstream.aclose()
    assert "FlareSolverr is unreachable" in caught.value.reason


async def test_an_in_band_anti_bot_refusal_invalidates_the_build(sim: SimServer) -> None:
    # HTTP 200 with code 7 in the stream: the adapter cannot see it; the chat service tells it.
    sim.config.statsig = "signed"
    upstream = CurlUpstream(Settings(upstream_url=sim.url, assets_url=sim.url))
    try:
        await answer(upstream)
        build = upstream.statsig.build
        await upstream.note_failure(UpstreamFailure(Kind.ANTI_BOT, "in-band error 7"))
        assert upstream.statsig.signed_now("POST", CHAT) is None  # the next value needs a new scrape
        await answer(upstream)
    finally:
        await upstream.aclose()
    assert upstream.statsig.scrapes == 2 and upstream.statsig.build == build  # same build, re-read
