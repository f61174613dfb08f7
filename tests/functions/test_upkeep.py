"""Account upkeep (accept ToS, set a birth date, enable NSFW: docs/protocol.md E16-E19) from the admin API and
the CLI, against the simulator with its signed-statsig check on; results kept as the account's state."""

from __future__ import annotations

import httpx
import pytest

from core.accounts import account_id_for
from core.protocol.account_upkeep import NSFW_ENABLE_BODY, TOS_BODY, grpc_status
from core.settings import Settings
from functions import admin
from functions._app import build_app
from functions._wiring import Deps
from functions.cli import main

ADMIN = {"authorization": "Bearer admin-key-123"}
TOKEN = "sim-super-upkeep"


@pytest.fixture
async def client(tmp_path, sim):
    sim.config.statsig = "signed"  # E17, E18, E19 carry a signed statsig; E16 none
    settings = Settings.from_env(
        {
            "GROKGATE_STORE": f"sqlite:///{tmp_path}/pool.db",
            "GROKGATE_ADMIN_KEY": "admin-key-123",
            "GROKGATE_UPSTREAM_URL": sim.url,
            "GROKGATE_ACCOUNTS_URL": sim.url,
        }
    )
    deps = Deps(settings=settings)
    app = build_app(admin.routes, deps=deps)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        await http.post("/admin/api/accounts/import?tier=super&detect=false", content=TOKEN, headers=ADMIN)
        yield http
    await deps.aclose()


async def test_upkeep_runs_every_step_and_keeps_the_result(client, sim):
    account_id = account_id_for(TOKEN)
    reply = await client.post(f"/admin/api/accounts/{account_id}/upkeep", headers=ADMIN)
    assert reply.status_code == 200, reply.text
    state = reply.json()["upkeep"]
    assert (state["tos"], state["birth_date"], state["nsfw"]) == ("done", "done", "done")
    account = sim.account(TOKEN)
    assert account.tos_version == 5 and account.birth_date == "1990-06-14T16:00:00.000Z" and account.nsfw
    sent = {r.path: r for r in sim.log if r.method == "POST"}
    assert sent["/auth_mgmt.AuthManagement/SetTosAcceptedVersion"].body == TOS_BODY
    assert "x-statsig-id" not in sent["/auth_mgmt.AuthManagement/SetTosAcceptedVersion"].headers
    assert sent["/auth_mgmt.AuthManagement/UpdateUserFeatureControls"].body == NSFW_ENABLE_BODY
    assert "x-statsig-id" in sent["/rest/auth/set-birth-date"].headers

    again = (
        await client.post(
            f"/admin/api/accounts/{account_id}/upkeep", headers=ADMIN, json={"steps": ["birth_date"]}
        )
    ).json()
    assert again["upkeep"]["birth_date"] == "already"  # locked after the first: 429 WKE marker
    shown = (await client.get(f"/admin/api/accounts/{account_id}", headers=ADMIN)).json()
    assert (
        shown["upkeep"]["nsfw"] == "done"
        and shown["upkeep"]["tos_at"] > 0
        and "token" not in str(shown["upkeep"])
    )


async def test_a_refused_step_is_reported_and_bad_input_is_a_400(client, sim):
    account_id = account_id_for(TOKEN)
    sim.account(TOKEN).grpc_denied = True
    state = (
        await client.post(f"/admin/api/accounts/{account_id}/upkeep", headers=ADMIN, json={"steps": ["nsfw"]})
    ).json()["upkeep"]
    assert state["nsfw"].startswith("failed: grpc-status 7")
    bad = await client.post(f"/admin/api/accounts/{account_id}/upkeep", headers=ADMIN, json={"steps": ["x"]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "steps"
    bad = await client.post(
        f"/admin/api/accounts/{account_id}/upkeep", headers=ADMIN, json={"birth_date": 1990}
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "birth_date"
    assert (await client.post("/admin/api/accounts/acc_nope/upkeep", headers=ADMIN)).status_code == 404


def test_cli_upkeep(tmp_path, monkeypatch, capsys, sim):
    monkeypatch.setenv("GROKGATE_STORE", f"sqlite:///{tmp_path}/pool.db")
    monkeypatch.setenv("GROKGATE_UPSTREAM_URL", sim.url)
    monkeypatch.setenv("GROKGATE_ACCOUNTS_URL", sim.url)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.txt").write_text(TOKEN + "\n")
    assert main(["accounts", "import", str(tmp_path / "t.txt"), "--tier", "super", "--no-detect"]) == 0
    capsys.readouterr()
    account_id = account_id_for(TOKEN)
    assert main(["accounts", "upkeep", account_id, "--steps", "tos,nsfw"]) == 0
    out = capsys.readouterr().out
    assert f"{account_id} tos: done" in out and f"{account_id} nsfw: done" in out
    assert sim.account(TOKEN).nsfw
    assert main(["accounts", "upkeep", account_id, "--steps", "bogus"]) == 2
    assert main(["accounts", "upkeep", "acc_missing"]) == 1


def test_grpc_status_reading() -> None:
    assert grpc_status(b"\x00\x00\x00\x00\x00\x80\x00\x00\x00\x0fgrpc-status:0\r\n") == (0, "")
    trailer = b"grpc-status:7\r\ngrpc-message:permission%20denied\r\n"
    assert grpc_status(b"\x80" + len(trailer).to_bytes(4, "big") + trailer) == (7, "permission denied")
    assert grpc_status(b"", {"grpc-status": "16", "grpc-message": "x"}) == (16, "x")
    assert grpc_status(b"") == (0, "")  # a missing status counts as success
