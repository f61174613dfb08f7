"""Quota windows (E10, E11), gRPC-web calls (E12, E16, E18), E17, E19, E20, E22, E23."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import httpx
import pytest

from infra.sim import grpcweb
from infra.sim.server import SimServer
from tests.sim.helpers import chat, headers

GRPC = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1", "x-user-agent": "connect-es/2.1.1"}


@pytest.fixture
def client(sim: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=10) as c:
        yield c


def limits(client: httpx.Client, token: str, mode: str) -> dict:
    r = client.post("/rest/rate-limits", json={"modelName": mode}, headers=headers(token))
    assert r.status_code == 200
    return r.json()


@pytest.mark.parametrize(
    ("tier", "mode", "total", "window"),
    [
        ("basic", "auto", 20, 72000),
        ("basic", "expert", 8, 36000),
        ("super", "fast", 140, 7200),
        ("heavy", "auto", 150, 7200),
        ("heavy", "heavy", 20, 7200),
        ("super", "heavy", 0, 7200),
    ],
)
def test_rate_limits_report_the_tier_totals(
    client: httpx.Client, tier: str, mode: str, total: int, window: int
) -> None:
    body = limits(client, f"sim-{tier}-q", mode)
    assert body == {
        "windowSizeSeconds": window,
        "remainingQueries": total,
        "totalQueries": total,
        "lowEffortRateLimits": None,
        "highEffortRateLimits": None,
    }


def test_rate_limits_validates_the_body(client: httpx.Client) -> None:
    assert client.post("/rest/rate-limits", json={}, headers=headers("sim-q")).status_code == 400
    assert (
        client.post("/rest/rate-limits", json={"modelName": "grok-9"}, headers=headers("sim-q")).status_code
        == 400
    )


def test_windows_decrement_exhaust_and_reset(client: httpx.Client, sim: SimServer) -> None:
    token = "sim-basic-q"
    sim.accounts.configure(token, window_seconds=60)
    for expected in range(7, -1, -1):
        assert chat(client, token, "hi", "expert").status_code == 200
        assert limits(client, token, "expert")["remainingQueries"] == expected
    r = chat(client, token, "hi", "expert")
    assert r.status_code == 429 and r.json()["error"]["code"] == 8
    assert limits(client, token, "fast")["remainingQueries"] == 60  # per mode
    assert limits(client, "sim-basic-other", "expert")["remainingQueries"] == 8  # per token
    sim.accounts.advance(61)
    assert limits(client, token, "expert") == {
        "windowSizeSeconds": 60,
        "remainingQueries": 8,
        "totalQueries": 8,
        "lowEffortRateLimits": None,
        "highEffortRateLimits": None,
    }
    assert chat(client, token, "hi", "expert").status_code == 200


def test_a_mode_outside_the_tier_is_refused(client: httpx.Client) -> None:
    assert chat(client, "sim-super-q", "hi", "heavy").status_code == 429


def test_imagine_quota_has_all_five_keys(client: httpx.Client, sim: SimServer) -> None:
    r = client.post("/rest/media/imagine/quota_info", json={}, headers=headers("sim-basic-q"))
    body = r.json()
    assert list(body) == ["image", "imageEdit", "imagePro", "video", "video720p"]
    assert body["image"] is None and body["video"] is None
    assert body["imagePro"] == {"available": True, "remainingQueries": 2, "windowSizeSeconds": 86400}
    account = sim.account("sim-basic-q")
    sim.accounts.consume(account, "video_720p")
    sim.accounts.consume(account, "video_720p")
    exhausted = client.post("/rest/media/imagine/quota_info", json={}, headers=headers("sim-basic-q")).json()[
        "video720p"
    ]
    assert exhausted["available"] is False and exhausted["remainingQueries"] == 0
    assert exhausted["nextAvailableAt"].endswith("Z")


def _frames(body: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i < len(body):
        (n,) = struct.unpack(">I", body[i + 1 : i + 5])
        out.append((body[i], body[i + 5 : i + 5 + n]))
        i += 5 + n
    return out


def test_weekly_credits_grpc_web(client: httpx.Client) -> None:
    r = client.post(
        "/grok_api_v2.GrokBuildBilling/GetGrokCreditsConfig",
        content=grpcweb.EMPTY_MESSAGE,
        headers={**headers("sim-super-q", False), **GRPC},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/grpc-web+proto"
    (flag, message), (tflag, trailer) = _frames(r.content)
    assert flag == 0 and tflag == 0x80 and trailer == b"grpc-status:0\r\n"
    assert message[0] == 0x0A  # field 1, length-delimited: the config
    assert struct.pack("<f", 11.0) in message and struct.pack("<f", 10.0) in message
    free = client.post(
        "/grok_api_v2.GrokBuildBilling/GetGrokCreditsConfig",
        content=grpcweb.EMPTY_MESSAGE,
        headers={**headers("sim-basic-q", False), **GRPC},
    )
    assert struct.pack("<f", 11.0) not in _frames(free.content)[0][1]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/auth_mgmt.AuthManagement/SetTosAcceptedVersion", bytes.fromhex("00000000021001")),
        (
            "/auth_mgmt.AuthManagement/UpdateUserFeatureControls",
            bytes.fromhex("00000000200a021001121a0a18") + b"always_show_nsfw_content",
        ),
    ],
)
def test_grpc_calls_check_exact_bytes(client: httpx.Client, sim: SimServer, path: str, body: bytes) -> None:
    h = {**headers("sim-super-q"), **GRPC}
    ok = client.post(path, content=body, headers=h)
    assert ok.content == b"\x00\x00\x00\x00\x00" + b"\x80\x00\x00\x00\x0fgrpc-status:0\r\n"
    wrong = client.post(path, content=body[:-1] + b"X", headers=h)
    assert wrong.status_code == 200 and b"grpc-status:3" in wrong.content
    assert (
        client.post(path, content=body, headers={**h, "content-type": "application/json"}).status_code == 415
    )
    denied = client.post(path, content=body, headers={**headers("sim-grpcdenied-q"), **GRPC})
    assert _frames(denied.content)[-1] == (0x80, b"grpc-status:7\r\ngrpc-message:permission%20denied\r\n")


def test_nsfw_toggle_is_remembered(client: httpx.Client, sim: SimServer) -> None:
    h = {**headers("sim-super-q"), **GRPC}
    client.post("/auth_mgmt.AuthManagement/UpdateUserFeatureControls", content=grpcweb.NSFW_ENABLE, headers=h)
    assert sim.account("sim-super-q").nsfw is True
    client.post(
        "/auth_mgmt.AuthManagement/UpdateUserFeatureControls", content=grpcweb.NSFW_DISABLE, headers=h
    )
    assert sim.account("sim-super-q").nsfw is False


def test_set_tos_and_birth_date(client: httpx.Client, sim: SimServer) -> None:
    h = headers("sim-super-q")
    assert client.post("/rest/auth/set-tos-accepted", json={"tosVersion": 5}, headers=h).json() == {}
    assert sim.account("sim-super-q").tos_version == 5
    assert client.post("/rest/auth/set-tos-accepted", json={}, headers=h).status_code == 400
    first = client.post(
        "/rest/auth/set-birth-date", json={"birthDate": "1990-06-14T16:00:00.000Z"}, headers=h
    )
    assert first.status_code == 200
    again = client.post(
        "/rest/auth/set-birth-date", json={"birthDate": "1991-06-14T16:00:00.000Z"}, headers=h
    )
    assert again.status_code == 429 and "[WKE=account:birth-date-change-limit-reached]" in again.text
    assert client.post("/rest/auth/set-birth-date", json={"birthDate": "soon"}, headers=h).status_code == 400


def test_session_identity(client: httpx.Client, sim: SimServer) -> None:
    me = client.get("/api/auth/session", headers=headers("sim-super-q")).json()
    assert me["status"] == "authenticated" and me["session"]["userId"] == sim.account("sim-super-q").user_id
    assert client.get("/api/auth/session", headers=headers("sim-expired-q")).json() == {
        "status": "unauthenticated"
    }
    assert client.get("/api/auth/session", headers=headers("sim-blocked-q")).json() == {"status": "blocked"}
    assert client.get("/api/auth/session").json() == {"status": "unauthenticated"}


def test_livekit_token_and_index_meta(client: httpx.Client) -> None:
    r = client.post(
        "/rest/livekit/tokens",
        json={"sessionPayload": "{}", "requestAgentDispatch": False},
        headers=headers("sim-q"),
    )
    assert r.json()["token"] and r.json()["livekitUrl"] == "wss://livekit.grok.com"
    page = client.get("/index")  # a branded 404 that still carries the meta, its name with U+2015 bars
    assert page.status_code == 404 and 'name="grok\u2015site\u2015verification"' in page.text
    assert client.get("/").status_code == 200


def test_unknown_paths_are_404(client: httpx.Client) -> None:
    assert client.get("/rest/nothing-here").status_code == 404
