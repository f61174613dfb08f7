"""Upstream access end to end. `/api/cron/clearance` against the simulator with its defences on: it solves what is missing or
expiring through the simulator's FlareSolverr, shares it through the store, and a repeat does nothing."""

from __future__ import annotations

import httpx
import pytest

from core.settings import Settings
from functions import cron
from functions._app import build_app
from functions._wiring import Deps

CRON = {"authorization": "Bearer cron-secret-0123456789"}


@pytest.fixture
async def client(tmp_path, sim):
    sim.config.statsig = "signed"
    sim.config.challenge_all = True
    settings = Settings.from_env(
        {
            "GROKGATE_STORE": f"sqlite:///{tmp_path}/pool.db",
            "CRON_SECRET": "cron-secret-0123456789",
            "GROKGATE_UPSTREAM_URL": sim.url,
            "GROKGATE_FLARESOLVERR_URL": sim.url,
        }
    )
    deps = Deps(settings=settings)
    app = build_app(cron.routes, deps=deps)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        yield http
    await deps.aclose()


async def test_cron_clearance_refreshes_once_and_is_idempotent(client, sim):
    assert (await client.post("/api/cron/clearance")).status_code == 401
    first = (await client.get("/api/cron/clearance", headers=CRON)).json()
    assert first["clearance"] == {"refreshed": ["direct"], "fresh": [], "failed": []}
    assert first["statsig"]["build"]  # scraped through the solved clearance
    assert sim.state.solves == 1
    again = (await client.get("/api/cron/clearance", headers=CRON)).json()
    assert again["clearance"] == {"refreshed": [], "fresh": ["direct"], "failed": []}
    assert sim.state.solves == 1


async def test_cron_renews_a_clearance_that_expires_within_the_interval(client, sim):
    sim.config.clearance_ttl = 300.0  # shorter than GROKGATE_CLEARANCE_REFRESH_WITHIN (1200 s)
    await client.get("/api/cron/clearance", headers=CRON)
    report = (await client.get("/api/cron/clearance", headers=CRON)).json()
    assert report["clearance"]["refreshed"] == ["direct"] and sim.state.solves == 2


async def test_the_chat_service_reports_an_in_band_refusal_to_the_upstream(tmp_path, sim):
    from core.accounts import NewAccount
    from core.catalog import Tier
    from functions.local import create_app

    settings = Settings.from_env(
        {
            "GROKGATE_STORE": f"sqlite:///{tmp_path}/p.db",
            "GROKGATE_UPSTREAM_URL": sim.url,
            "GROKGATE_RETRY_BUDGET": "0",
        }
    )
    deps = Deps(settings=settings)
    await deps.store.add([NewAccount("sim-super-antibot", Tier.SUPER)], 0)
    app = create_app(deps)
    body = {"model": "grok-4.20-0309-non-reasoning", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        reply = await http.post("/v1/chat/completions", json=body)
    rest = getattr(deps.upstream, "rest", deps.upstream)
    try:
        assert reply.status_code == 502 and reply.json()["error"]["code"] == "anti_bot_rejected"
        assert rest.statsig.scrapes == 1 and rest.statsig.signed_now("POST", "/x") is None  # invalidated
    finally:
        await deps.aclose()
