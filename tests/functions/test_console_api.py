"""The console's server side over HTTP: the session cookie, CSRF, login limits, batches kept in the
store and advanced by whoever polls, and no full token in anything the console receives."""

from __future__ import annotations

import httpx
import pytest

from core.accounts import AccountStatus, account_id_for
from core.settings import Settings
from functions import admin
from functions._app import build_app
from functions._wiring import Deps

KEY = "admin-key-console-0123"
TOKENS = [f"tok-console-{i:02d}-{'z' * 16}" for i in range(12)]


@pytest.fixture
async def console(tmp_path, sim):
    settings = Settings.from_env(
        {
            "GROKGATE_STORE": f"sqlite:///{tmp_path}/pool.db",
            "GROKGATE_ADMIN_KEY": KEY,
            "GROKGATE_UPSTREAM_URL": sim.url,
            "GROKGATE_ACCOUNTS_URL": sim.url,
            "GROKGATE_MEDIA": str(tmp_path / "media"),
        }
    )
    deps = Deps(settings=settings)
    app = build_app(admin.routes, deps=deps)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    yield client, deps
    await client.aclose()
    await deps.aclose()


async def _login(client) -> str:
    r = await client.post("/admin/login", json={"key": KEY})
    assert r.status_code == 200
    return (await client.get("/admin/api/session")).json()["csrf"]


async def _with_pool(client, tier: str = "basic") -> dict[str, str]:
    """Log in, import TOKENS; the headers of a state-changing call."""
    headers = {"x-csrf-token": await _login(client)}
    r = await client.post(
        f"/admin/api/accounts/import?tier={tier}", content="\n".join(TOKENS), headers=headers
    )
    assert r.json()["added"] == len(TOKENS)
    return headers


async def _start(client, action: str, ids: list[str], headers: dict[str, str]) -> dict:
    r = await client.post("/admin/api/batches", json={"action": action, "ids": ids}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def test_the_page_and_its_assets_are_served(console):
    client, _ = console
    page = await client.get("/admin")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for name, kind in (
        ("app.js", "text/javascript"),
        ("style.css", "text/css"),
        ("accounts.js", "text/javascript"),
    ):
        r = await client.get(f"/admin/assets/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind), name
    assert (await client.get("/admin/assets/..%2F_console.py")).status_code == 404
    assert (await client.get("/admin/assets/nothing.js")).status_code == 404


async def test_session_cookie_flags_and_expiry(console):
    client, _ = console
    r = await client.post("/admin/login", json={"key": KEY})
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert "Max-Age=43200" in cookie and "Secure" not in cookie  # plain http here
    r = await client.post("/admin/login", json={"key": KEY}, headers={"x-forwarded-proto": "https"})
    assert "; Secure" in r.headers["set-cookie"]
    value = cookie.split(";")[0].split("=", 1)[1]
    tampered = value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
    fresh = httpx.AsyncClient(transport=client._transport, base_url="http://gw")
    fresh.cookies.set("gg_console", tampered, domain="gw", path="/admin")
    assert (await fresh.get("/admin/api/accounts")).status_code == 401


async def test_wrong_keys_are_refused_then_rate_limited(console):
    client, _ = console
    for _ in range(10):
        r = await client.post("/admin/login", json={"key": "wrong"})
        assert r.status_code == 401 and "set-cookie" not in r.headers
    r = await client.post("/admin/login", json={"key": KEY})  # even the right key, for a while
    assert r.status_code == 429 and r.headers["retry-after"] == "600"
    other = {"x-forwarded-for": "203.0.113.9"}
    assert (await client.post("/admin/login", json={"key": KEY}, headers=other)).status_code == 200


async def test_state_changes_need_the_csrf_token_and_this_origin(console):
    client, deps = console
    csrf = await _login(client)
    body = "\n".join(TOKENS[:2])
    assert (await client.post("/admin/api/accounts/import", content=body)).status_code == 403
    wrong = {"x-csrf-token": "not-it"}
    assert (await client.post("/admin/api/accounts/import", content=body, headers=wrong)).status_code == 403
    evil = {"x-csrf-token": csrf, "origin": "https://evil.example"}
    r = await client.post("/admin/api/accounts/import", content=body, headers=evil)
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_origin_mismatch"
    good = {"x-csrf-token": csrf, "origin": "http://gw"}
    assert (await client.post("/admin/api/accounts/import", content=body, headers=good)).json()["added"] == 2
    assert (await client.get("/admin/api/accounts")).status_code == 200  # reads need no token
    # Behind a proxy that rewrites Host (CloudFront), the public URL is this site too.
    deps.settings = deps.settings.model_copy(update={"public_url": "https://console.example"})
    proxied = {"x-csrf-token": csrf, "origin": "https://console.example"}
    assert (
        await client.post("/admin/api/accounts/import", content=TOKENS[3], headers=proxied)
    ).status_code == 200
    # Scripts keep the Bearer key and need no CSRF token.
    bearer = {"authorization": f"Bearer {KEY}"}
    assert (
        await client.post("/admin/api/accounts/import", content=TOKENS[2], headers=bearer)
    ).status_code == 200


async def test_logout_ends_the_session_everywhere(console):
    client, _ = console
    csrf = await _login(client)
    cookie = client.cookies.get("gg_console")
    assert (await client.post("/admin/logout")).status_code == 403  # a logout is a change too
    r = await client.post("/admin/logout", headers={"x-csrf-token": csrf})
    assert r.status_code == 200 and "Max-Age=0" in r.headers["set-cookie"]
    replay = httpx.AsyncClient(transport=client._transport, base_url="http://gw")
    replay.cookies.set("gg_console", cookie, domain="gw", path="/admin")
    assert (await replay.get("/admin/api/accounts")).status_code == 401  # revoked in the store


async def test_a_batch_is_kept_in_the_store_and_finished_by_whoever_polls(console):
    client, deps = console
    headers = await _with_pool(client)
    ids = [account_id_for(t) for t in TOKENS] + ["acc_missing"]
    batch = await _start(client, "disable", ids, headers)
    assert batch["total"] == 13 and batch["done"] == 0 and batch["state"] == "running"
    # Another client (another instance, or the page reopened) sees it and moves it on.
    other = httpx.AsyncClient(transport=client._transport, base_url="http://gw")
    bearer = {"authorization": f"Bearer {KEY}"}
    assert [b["id"] for b in (await other.get("/admin/api/batches", headers=bearer)).json()["data"]] == [
        batch["id"]
    ]
    seen = []
    while batch["state"] == "running":
        batch = (await other.get(f"/admin/api/batches/{batch['id']}", headers=bearer)).json()
        seen.append(batch["done"])
    assert seen == [10, 13] and batch["ok"] == 12 and batch["failed"] == 1
    assert batch["results"][-1] == {"id": "acc_missing", "ok": False, "detail": "no such account"}
    for token in TOKENS:
        assert (await deps.store.get(account_id_for(token))).status is AccountStatus.DISABLED
    bad = await client.post("/admin/api/batches", json={"action": "explode", "ids": ids}, headers=headers)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "action"


async def test_no_full_token_reaches_the_console(console):
    client, _ = console
    headers = await _with_pool(client)
    ids = [account_id_for(t) for t in TOKENS]
    batch = await _start(client, "refresh", ids, headers)
    seen = [batch]
    while seen[-1]["state"] == "running":
        seen.append((await client.get(f"/admin/api/batches/{batch['id']}")).json())
    bodies = [
        (await client.get("/admin/api/accounts?limit=500")).text,
        (await client.get(f"/admin/api/accounts/{ids[0]}")).text,
        (await client.get("/admin/api/accounts/export")).text,
        (await client.get("/admin/api/batches")).text,
        (await client.get("/admin/api/session")).text,
        (await client.get("/admin")).text,
        str(seen),
    ]
    for token in TOKENS:
        assert not any(token in body for body in bodies)
    assert TOKENS[0][:4] + "…" + TOKENS[0][-4:] in bodies[2]  # the console's export is an inventory
    full = await client.get("/admin/api/accounts/export", headers={"authorization": f"Bearer {KEY}"})
    assert TOKENS[0] in full.text  # the Bearer export still moves a pool


async def test_settings_show_sources_mask_secrets_and_overrides_reach_every_instance(console, tmp_path):
    client, deps = console
    csrf = await _login(client)
    rows = {s["name"]: s for s in (await client.get("/admin/api/settings")).json()["settings"]}
    assert rows["admin_key"]["value"] == "set (hidden)" and rows["admin_key"]["source"] == "environment"
    assert not rows["admin_key"]["editable"] and not rows["store"]["editable"]
    assert rows["retry_budget"]["editable"] and rows["retry_budget"]["source"] == "default"
    assert KEY not in (await client.get("/admin/api/settings")).text

    # A second instance on the same store, which has read the overrides once already.
    other = Deps(settings=deps.base_settings)
    await other.refresh_overrides()
    assert other.settings.retry_budget == 2

    headers = {"x-csrf-token": csrf}
    r = await client.put(
        "/admin/api/settings",
        json={"overrides": {"retry_budget": 5, "show_reasoning": False}},
        headers=headers,
    )
    assert r.status_code == 200
    rows = {s["name"]: s for s in r.json()["settings"]}
    assert rows["retry_budget"]["value"] == 5 and rows["retry_budget"]["source"] == "override (console)"
    assert rows["retry_budget"]["deployed"] == 2
    assert deps.settings.retry_budget == 5 and not deps.settings.show_reasoning  # this instance at once

    assert other.settings.retry_budget == 2
    other._overrides_next = 0.0  # its few seconds are up
    assert other.overrides_due()
    await other.refresh_overrides()
    assert other.settings.retry_budget == 5 and other.settings.show_reasoning is False
    assert other.base_settings.retry_budget == 2

    bad = await client.put("/admin/api/settings", json={"overrides": {"retry_budget": 99}}, headers=headers)
    assert bad.status_code == 400 and "GROKGATE_RETRY_BUDGET" in bad.json()["error"]["message"]
    locked = await client.put(
        "/admin/api/settings", json={"overrides": {"store": "sqlite:///x"}}, headers=headers
    )
    assert (
        locked.status_code == 400
        and "not a setting the console may change" in locked.json()["error"]["message"]
    )
    assert (
        await client.put("/admin/api/settings", json={"overrides": {"retry_budget": 1}})
    ).status_code == 403

    r = await client.put("/admin/api/settings", json={"overrides": {"retry_budget": None}}, headers=headers)
    assert r.json()["overrides"] == {"show_reasoning": False} and deps.settings.retry_budget == 2
    await other.aclose()


async def test_media_inventory_and_delete(console):
    client, deps = console
    csrf = await _login(client)
    store = deps.media_store
    kept = await store.put(b"\x89PNG" + b"0" * 96, "image/png")
    gone = await store.put(b"\x89PNG" + b"1" * 46, "image/png")
    listed = (await client.get("/admin/api/media")).json()
    assert listed["count"] == 2 and listed["total_bytes"] == 150
    assert {m["id"] for m in listed["data"]} == {kept, gone}
    assert (await client.delete(f"/admin/api/media/{gone}")).status_code == 403  # no CSRF token
    assert (
        await client.delete(f"/admin/api/media/{gone}", headers={"x-csrf-token": csrf})
    ).status_code == 200
    assert (
        await client.delete(f"/admin/api/media/{gone}", headers={"x-csrf-token": csrf})
    ).status_code == 404
    assert (await client.get("/admin/api/media")).json()["count"] == 1


async def test_jobs_of_every_key_newest_first(console):
    from core.ports import Job, JobStatus
    from core.services.videos import owner_of

    client, deps = console
    await _login(client)
    jobs = deps.job_store
    await jobs.create(
        Job(
            "video_a",
            "video",
            JobStatus.QUEUED,
            {"model": "grok-imagine-video", "prompt": "a cat"},
            1.0,
            1.0,
            owner="",
        )
    )
    failed = Job(
        "video_b",
        "video",
        JobStatus.FAILED,
        {"prompt": "a dog", "token": "never shown"},
        2.0,
        3.0,
        error_code="upstream_error",
        error_message="the upstream refused",
        attempts=2,
    )
    await jobs.create(failed)
    await jobs.create(Job("video_c", "video", JobStatus.QUEUED, {}, 5.0, 5.0, owner=owner_of("unknown-key")))
    data = (await client.get("/admin/api/jobs")).json()["data"]
    assert [j["id"] for j in data] == ["video_b", "video_a"]  # "unknown-key" is not a configured key
    assert data[1]["params"] == {"model": "grok-imagine-video", "prompt": "a cat"}
    assert data[0]["params"] == {"prompt": "a dog"}  # only what was asked, never anything else
    assert (data[0]["status"], data[0]["error_code"], data[0]["attempts"]) == ("failed", "upstream_error", 2)


async def test_voice_token_for_a_chosen_account(console, sim):
    client, _ = console
    csrf = await _login(client)
    headers = {"x-csrf-token": csrf}
    await client.post(
        "/admin/api/accounts/import?tier=super", content="sim-super-voice-aaaaaaaaaaaa", headers=headers
    )
    account_id = account_id_for("sim-super-voice-aaaaaaaaaaaa")
    r = await client.post(
        "/admin/api/voice/token", json={"account_id": account_id, "voice": "ara"}, headers=headers
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"].startswith("sim-livekit.") and body["url"] == "wss://livekit.grok.com"
    assert body["room_name"].startswith("room-") and body["participant_name"].startswith("user-")
    assert body["rtc_url"].endswith("access_token=" + body["token"])
    assert "sim-super-voice-aaaaaaaaaaaa" not in r.text
    sent = [e for e in sim.log if e.path == "/rest/livekit/tokens"][-1]
    assert '"voice":"ara"' in sent.json["sessionPayload"] and sent.json["requestAgentDispatch"] is False
    missing = await client.post("/admin/api/voice/token", json={"account_id": "acc_nope"}, headers=headers)
    assert missing.status_code == 404
    bad = await client.post(
        "/admin/api/voice/token", json={"account_id": account_id, "speed": 9}, headers=headers
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "speed"
    assert (await client.post("/admin/api/voice/token", json={"account_id": account_id})).status_code == 403


async def test_the_quota_cron_moves_a_batch_on_when_nobody_watches(console):
    from functions.cron import run_quota_upkeep

    client, deps = console
    headers = await _with_pool(client)
    batch = await _start(client, "disable", [account_id_for(t) for t in TOKENS], headers)
    report = await run_quota_upkeep(deps)  # the page was closed: the schedule does a step
    assert report["batches_advanced"] == 1
    listed = (await client.get("/admin/api/batches")).json()["data"][0]
    assert listed["id"] == batch["id"] and listed["done"] > 0
    while (await run_quota_upkeep(deps))["batches_advanced"]:
        pass
    done = (await client.get(f"/admin/api/batches/{batch['id']}")).json()
    assert done["state"] == "done" and done["ok"] == len(TOKENS)


async def test_upkeep_batches_accept_the_tos_and_enable_nsfw(console, sim):
    client, _ = console
    headers = {"x-csrf-token": await _login(client)}
    tokens = [f"sim-super-upkeep-{i}-aaaaaaaaaaaa" for i in range(3)]
    await client.post("/admin/api/accounts/import?tier=super", content="\n".join(tokens), headers=headers)
    ids = [account_id_for(t) for t in tokens]
    for action in ("accept_tos", "nsfw"):
        batch = await _start(client, action, ids, headers)
        while batch["state"] == "running":
            batch = (await client.get(f"/admin/api/batches/{batch['id']}")).json()
        assert batch["ok"] == 3 and batch["failed"] == 0, batch["results"]
    assert batch["results"][0]["detail"] == "birth_date: done, nsfw: done"
    for token in tokens:
        assert sim.account(token).tos_version is not None and sim.account(token).nsfw
