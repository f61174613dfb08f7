"""Admin API and quota cron, against a real store and the simulator's E10 (`/rest/rate-limits`)."""

from __future__ import annotations

import httpx
import pytest

from core.accounts import AccountStatus, Quota, account_id_for
from core.catalog import Tier
from core.settings import Settings
from functions import admin, cron
from functions._app import build_app
from functions._wiring import Deps
from infra.upstream.rate_limits import RateLimitClient, parse_rate_limits

ADMIN = {"authorization": "Bearer admin-key-123"}
CRON = {"authorization": "Bearer cron-secret-0123456789"}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def gateway(tmp_path, sim):
    settings = Settings.from_env(
        {
            "GROKGATE_STORE": f"sqlite:///{tmp_path}/pool.db",
            "GROKGATE_ADMIN_KEY": "admin-key-123",
            "CRON_SECRET": "cron-secret-0123456789",
            "GROKGATE_UPSTREAM_URL": sim.url,
        }
    )
    clock = Clock(sim.accounts.now())
    deps = Deps(settings=settings, clock=clock)
    app = build_app([*admin.routes, *cron.routes], deps=deps)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    yield client, deps, clock
    await client.aclose()
    await deps.aclose()


async def test_admin_needs_the_key(gateway):
    client, _, _ = gateway
    assert (await client.get("/admin/api/accounts")).status_code == 401
    assert (
        await client.get("/admin/api/accounts", headers={"authorization": "Bearer nope"})
    ).status_code == 401
    assert (
        await client.get("/admin/api/accounts", headers={"x-api-key": "admin-key-123"})
    ).status_code == 200
    assert (await client.post("/api/cron/quota", headers=ADMIN)).status_code == 401


async def test_import_list_export_and_lifecycle(gateway):
    client, _, _ = gateway
    lines = "sso=tok-one-aaaaaaaaaaaa\n tok-two-bbbbbbbbbbbb \n\ntok-one-aaaaaaaaaaaa\n\u2603bad\n"
    r = await client.post("/admin/api/accounts/import?tier=super", content=lines, headers=ADMIN)
    assert r.json() == {"added": 2, "skipped": 1, "invalid": 1, "tiers": {"super": 2}, "unchecked": 0}
    body = '{"accounts": [{"token": "tok-three-cccccccccc", "tier": "heavy", "note": "n", "tags": ["a"]}]}'
    r = await client.post("/admin/api/accounts/import", content=body, headers=ADMIN)
    assert r.json() == {"added": 1, "skipped": 0, "invalid": 0, "tiers": {"heavy": 1}, "unchecked": 0}

    listed = (await client.get("/admin/api/accounts?limit=2", headers=ADMIN)).json()
    assert len(listed["data"]) == 2 and listed["next_cursor"]
    assert all("tok-" not in row["token"] or "…" in row["token"] for row in listed["data"])
    assert "tok-one-aaaaaaaaaaaa" not in str(listed)
    heavy = (await client.get("/admin/api/accounts?tier=heavy", headers=ADMIN)).json()["data"]
    assert [row["note"] for row in heavy] == ["n"] and heavy[0]["tags"] == ["a"]
    assert (await client.get("/admin/api/accounts?tier=gold", headers=ADMIN)).status_code == 400

    exported = (await client.get("/admin/api/accounts/export", headers=ADMIN)).json()["accounts"]
    assert sorted(a["token"] for a in exported) == [
        "tok-one-aaaaaaaaaaaa",
        "tok-three-cccccccccc",
        "tok-two-bbbbbbbbbbbb",
    ]

    one = account_id_for("tok-one-aaaaaaaaaaaa")
    r = await client.post(f"/admin/api/accounts/{one}/disable", json={"reason": "resting"}, headers=ADMIN)
    assert r.json()["status"] == "disabled" and r.json()["reason"] == "resting"
    disabled = (await client.get("/admin/api/accounts?status=disabled", headers=ADMIN)).json()["data"]
    assert [row["id"] for row in disabled] == [one]
    assert (await client.post(f"/admin/api/accounts/{one}/enable", headers=ADMIN)).json()[
        "status"
    ] == "active"
    assert (await client.post(f"/admin/api/accounts/{one}/reset", headers=ADMIN)).json()["reason"] == ""
    assert (await client.get(f"/admin/api/accounts/{one}", headers=ADMIN)).json()["id"] == one
    assert (await client.delete(f"/admin/api/accounts/{one}", headers=ADMIN)).json()["deleted"]
    assert (await client.delete(f"/admin/api/accounts/{one}", headers=ADMIN)).status_code == 404
    assert (await client.post("/admin/api/accounts/acc_x/disable", headers=ADMIN)).status_code == 404


async def test_cron_refreshes_due_accounts_once_and_refresh_now_is_limited(gateway, sim):
    client, deps, clock = gateway
    sim.accounts.register("tok-super-dddddddddd", tier="super")
    sim.accounts.register("tok-basic-eeeeeeeeee", tier="basic")
    sim.accounts.register("tok-gone-ffffffffff", tier="super", expired=True)
    sim.accounts.consume(sim.account("tok-super-dddddddddd"), "fast")
    text = "tok-super-dddddddddd\ntok-gone-ffffffffff\n"
    await client.post("/admin/api/accounts/import?tier=super", content=text, headers=ADMIN)
    await client.post("/admin/api/accounts/import?tier=basic", content="tok-basic-eeeeeeeeee", headers=ADMIN)

    report = (await client.post("/api/cron/quota", headers=CRON)).json()
    assert report["due"] == 3 and report["refreshed"] == 2 and report["failed"] == 1
    super_id = account_id_for("tok-super-dddddddddd")
    fast = (await deps.store.get(super_id)).quotas["fast"]
    assert (fast.remaining, fast.total, fast.window_seconds) == (139, 140, 7200)
    assert fast.reset_at == clock.now + 7200
    gone = await deps.store.get(account_id_for("tok-gone-ffffffffff"))
    assert gone.status is AccountStatus.EXPIRED and gone.reason

    # A second delivery finds nothing due; nothing is fetched twice.
    again = (await client.get("/api/cron/quota", headers=CRON)).json()
    assert again["due"] == 0 and again["refreshed"] == 0
    # Due again after the tier's interval: super after 7200 s, basic only after 36000 s.
    clock.now += 7200
    later = (await client.post("/api/cron/quota", headers=CRON)).json()
    assert later["accounts"][super_id] == "refreshed" and later["refreshed"] == 1
    assert account_id_for("tok-basic-eeeeeeeeee") not in later["accounts"]
    assert later["accounts"][account_id_for("tok-gone-ffffffffff")] == "skipped"  # expired: not asked

    # Refresh now: at most every 300 s per account.
    await deps.store.set_quota(super_id, "fast", Quota(1, 140, 7200, clock.now + 10))
    r = (await client.post(f"/admin/api/accounts/{super_id}/refresh", headers=ADMIN)).json()
    assert r["result"] == "skipped" and r["account"]["quotas"]["fast"]["remaining"] == 1
    clock.now += 300
    r = (await client.post(f"/admin/api/accounts/{super_id}/refresh", headers=ADMIN)).json()
    assert r["result"] == "refreshed" and r["account"]["quotas"]["fast"]["remaining"] == 139


async def test_rate_limit_client_against_the_simulator(sim):
    settings = Settings.from_env({"GROKGATE_UPSTREAM_URL": sim.url})
    sim.accounts.register("tok-heavy-gggggggggg", tier="heavy")
    client = RateLimitClient(settings)
    try:
        quota = await client.fetch("tok-heavy-gggggggggg", "heavy", 1000.0)
        assert quota == Quota(20, 20, 7200, 8200.0)
        request = sim.log.last() if hasattr(sim.log, "last") else None
        if request is not None and hasattr(request, "headers"):
            assert "sso=tok-heavy-gggggggggg; sso-rw=tok-heavy-gggggggggg" in str(request.headers)
    finally:
        await client.aclose()


def test_parse_rate_limits_defaults():
    assert parse_rate_limits({"remainingQueries": 3}, 0.0) == Quota(3, 3, 7200, 7200.0)
    assert parse_rate_limits(
        {"remainingQueries": 3, "totalQueries": 8, "windowSizeSeconds": 60}, 5.0
    ) == Quota(3, 8, 60, 65.0)
    with pytest.raises(ValueError):
        parse_rate_limits({"totalQueries": 3}, 0.0)
    assert Tier.BASIC  # the module's imports stay honest
