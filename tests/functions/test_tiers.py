"""Tiers come from the upstream (its rate-limit totals) unless an operator set them: import,
refresh, `PATCH /admin/api/accounts/{id}`, `grokgate accounts set-tier`, against the simulator."""

from __future__ import annotations

import httpx
import pytest

from core.accounts import Quota, TierSource, account_id_for, detect_tier
from core.catalog import Tier
from core.services.quota import refresh_account
from core.settings import Settings
from functions import admin, cron
from functions._app import build_app
from functions._wiring import Deps
from functions.cli import main

ADMIN = {"authorization": "Bearer admin-key-123"}


@pytest.mark.parametrize(
    ("totals", "tier"),
    [
        ({"auto": 20, "fast": 60, "expert": 8}, Tier.BASIC),  # [v2] basic
        ({"auto": 0, "fast": 30}, Tier.BASIC),  # [v2.0.4] basic: fast only
        ({"auto": 50, "fast": 140, "expert": 50, "heavy": 0}, Tier.SUPER),
        ({"auto": 150, "fast": 400, "expert": 150, "heavy": 20}, Tier.HEAVY),
        ({"auto": 50, "fast": 400}, Tier.SUPER),  # conflicting: the lowest named
        ({"auto": 33, "fast": 77}, None),  # nothing recognised: keep what is there
    ],
)
def test_detect_tier_from_the_totals(totals, tier):
    assert detect_tier(totals) is tier


@pytest.fixture
async def gateway(tmp_path, sim):
    settings = Settings.from_env(
        {
            "GROKGATE_STORE": f"sqlite:///{tmp_path}/pool.db",
            "GROKGATE_ADMIN_KEY": "admin-key-123",
            "GROKGATE_UPSTREAM_URL": sim.url,
        }
    )
    deps = Deps(settings=settings, clock=sim.accounts.now)
    app = build_app([*admin.routes, *cron.routes], deps=deps)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    yield client, deps
    await client.aclose()
    await deps.aclose()


@pytest.mark.parametrize("tier", ["basic", "super", "heavy"])
async def test_the_simulator_tells_each_tier_apart(gateway, sim, tier):
    _, deps = gateway
    token = f"tok-sim-{tier}-aaaaaaaaaaaa"
    sim.accounts.register(token, tier=tier)
    fetch = deps.rate_limits.fetch
    totals = {mode: (await fetch(token, mode, 0.0)).total for mode in ("auto", "fast", "expert", "heavy")}
    assert detect_tier(totals) is Tier(tier)


async def test_import_without_a_tier_detects_it_and_an_explicit_tier_wins(gateway, sim):
    client, deps = gateway
    sim.accounts.register("tok-is-super-aaaaaaaa", tier="super")
    sim.accounts.register("tok-is-heavy-bbbbbbbb", tier="heavy")
    sim.accounts.register("tok-said-basic-cccccc", tier="super")
    r = await client.post(
        "/admin/api/accounts/import",
        content='[{"token": "tok-is-super-aaaaaaaa"}, "tok-is-heavy-bbbbbbbb", '
        '{"token": "tok-said-basic-cccccc", "tier": "basic"}, "not a token!"]',
        headers=ADMIN,
    )
    assert r.json() == {
        "added": 3,
        "skipped": 0,
        "invalid": 1,  # a space cannot be in a cookie value: refused, not rewritten
        "tiers": {"basic": 1, "heavy": 1, "super": 1},
        "unchecked": 0,
    }
    detected = await deps.store.get(account_id_for("tok-is-super-aaaaaaaa"))
    assert detected.tier is Tier.SUPER and detected.tier_source is TierSource.DETECTED
    assert detected.quotas["auto"].total == 50  # the real windows, read at import
    heavy = await deps.store.get(account_id_for("tok-is-heavy-bbbbbbbb"))
    assert heavy.tier is Tier.HEAVY and heavy.quotas["heavy"].total == 20
    said = await deps.store.get(account_id_for("tok-said-basic-cccccc"))
    assert said.tier is Tier.BASIC and said.tier_source is TierSource.OPERATOR


async def test_an_account_imported_as_basic_shows_super_after_one_refresh(gateway, sim):
    client, deps = gateway
    sim.accounts.register("tok-late-super-dddddd", tier="super")
    r = await client.post(
        "/admin/api/accounts/import?detect=false", content="tok-late-super-dddddd", headers=ADMIN
    )
    assert r.json()["tiers"] == {"basic": 1}
    account_id = account_id_for("tok-late-super-dddddd")
    row = (await client.get(f"/admin/api/accounts/{account_id}", headers=ADMIN)).json()
    assert (row["tier"], row["tier_source"]) == ("basic", "assumed")

    r = (await client.post(f"/admin/api/accounts/{account_id}/refresh", headers=ADMIN)).json()
    assert r["result"] == "refreshed"
    assert (r["account"]["tier"], r["account"]["tier_source"]) == ("super", "detected")
    # ...and it is used: a super-only model's lease now finds it.
    lease = await deps.store.lease(mode="auto", tiers=[Tier.SUPER], now=deps.clock(), ttl=60)
    assert lease is not None and lease.account_id == account_id


async def test_patch_sets_tier_note_tags_and_an_operator_tier_survives_refresh(gateway, sim):
    client, deps = gateway
    sim.accounts.register("tok-patch-me-eeeeeeee", tier="super")
    await client.post("/admin/api/accounts/import", content="tok-patch-me-eeeeeeee", headers=ADMIN)
    account_id = account_id_for("tok-patch-me-eeeeeeee")
    url = f"/admin/api/accounts/{account_id}"

    r = await client.patch(
        url, json={"tier": "heavy", "note": "team A", "tags": ["eu", "paid"]}, headers=ADMIN
    )
    assert r.status_code == 200
    row = r.json()
    assert (row["tier"], row["tier_source"], row["note"], row["tags"]) == (
        "heavy",
        "operator",
        "team A",
        ["eu", "paid"],
    )
    account = await deps.store.get(account_id)
    # The operator's tier is kept by a refresh that reads super-sized quotas.
    assert (
        await refresh_account(deps.store, deps.rate_limits.fetch, account, deps.clock() + 400) == "refreshed"
    )
    assert (await deps.store.get(account_id)).tier is Tier.HEAVY
    # "auto" hands it back to detection: the next refresh corrects it.
    r = await client.patch(url, json={"tier": "auto"}, headers=ADMIN)
    assert r.json()["tier_source"] == "assumed"
    account = await deps.store.get(account_id)
    await refresh_account(deps.store, deps.rate_limits.fetch, account, deps.clock() + 800)
    assert (await deps.store.get(account_id)).tier is Tier.SUPER

    for body, param in (({"tier": "gold"}, "tier"), ({"tags": "eu"}, "tags"), ({"note": 3}, "note")):
        r = await client.patch(url, json=body, headers=ADMIN)
        assert r.status_code == 400 and r.json()["error"]["param"] == param
    assert (await client.patch(url, json={}, headers=ADMIN)).status_code == 400
    assert (await client.patch(url, content=b"nope", headers=ADMIN)).status_code == 400
    r = await client.patch("/admin/api/accounts/acc_missing", json={"note": "x"}, headers=ADMIN)
    assert r.status_code == 404
    assert (await client.patch(url, json={"note": "x"})).status_code == 401


def test_cli_set_tier_and_import_detection(tmp_path, monkeypatch, capsys, sim):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GROKGATE_STORE", f"sqlite:///{tmp_path}/pool.db")
    monkeypatch.setenv("GROKGATE_UPSTREAM_URL", sim.url)
    sim.accounts.register("cli-super-ffffffffffff", tier="super")
    (tmp_path / "tokens.txt").write_text("cli-super-ffffffffffff\nnot a token!\n")
    assert main(["accounts", "import", "tokens.txt"]) == 0
    assert capsys.readouterr().out.splitlines() == ["added 1, skipped 0, invalid 1", "tiers: super 1"]
    account_id = account_id_for("cli-super-ffffffffffff")
    assert main(["accounts", "set-tier", account_id, "heavy"]) == 0
    assert "tier heavy" in capsys.readouterr().out
    assert main(["accounts", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(account_id))
    assert row.split()[1:3] == ["heavy", "operator"]
    assert main(["accounts", "set-tier", "acc_missing", "super"]) == 1
    assert Quota  # imported for the module's readers: windows are Quota records
