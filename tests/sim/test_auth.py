"""Rejections as the real service sends them, and every per-account knob."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from infra.sim.server import SimServer
from tests.sim.helpers import CHAT, STATSIG, chat, chat_body, headers

INVALID = {
    "code": 16,
    "message": "Failed to look up session ID. [WKE=unauthenticated:invalid-credentials]",
    "details": [],
}


@pytest.fixture
def client(sim: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=10) as c:
        yield c


@pytest.mark.parametrize(
    "cookie",
    [
        "",
        "sso=sim-super-a",
        "sso-rw=sim-super-a",
        "sso=sim-super-a; sso-rw=sim-super-b",
        "sso=unknown; sso-rw=unknown",
    ],
)
def test_missing_mismatched_or_unknown_session_is_400_invalid_credentials(
    client: httpx.Client, cookie: str
) -> None:
    r = client.post(CHAT, json=chat_body("hi"), headers={"cookie": cookie, "x-statsig-id": STATSIG})
    assert r.status_code == 400 and r.json() == INVALID


def test_unauthenticated_status_can_be_401(client: httpx.Client, sim: SimServer) -> None:
    sim.config.unauth_status = 401
    assert chat(client, "unknown", "hi").status_code == 401


def test_registered_tokens_work_and_unknown_do_not_until_accept_any(
    client: httpx.Client, sim: SimServer
) -> None:
    assert chat(client, "plain-token", "hi").status_code == 400
    sim.accounts.register("plain-token", tier="basic")
    assert chat(client, "plain-token", "hi").status_code == 200
    sim.reset()
    assert chat(client, "plain-token", "hi").status_code == 400
    sim.accounts.accept_any = True
    assert chat(client, "anything", "hi").status_code == 200


def test_missing_or_garbled_statsig_is_a_403_json_rejection(client: httpx.Client, sim: SimServer) -> None:
    token = "sim-super-a"
    r = client.post(CHAT, json=chat_body("hi"), headers=headers(token, statsig=False))
    assert r.status_code == 403 and r.json()["error"]["code"] == 7
    r = client.post(CHAT, json=chat_body("hi"), headers={**headers(token), "x-statsig-id": "!!not base64!!"})
    assert r.status_code == 403
    sim.config.statsig = "v3"
    assert chat(client, token, "hi").status_code == 403  # does not decode to 70 bytes
    import base64

    ok = base64.b64encode(bytes(70)).decode().rstrip("=")
    assert (
        client.post(CHAT, json=chat_body("hi"), headers={**headers(token), "x-statsig-id": ok}).status_code
        == 200
    )


def test_statsig_is_not_required_where_the_client_does_not_send_it(client: httpx.Client) -> None:
    r = client.get("/api/auth/session", headers=headers("sim-super-a", statsig=False))
    assert r.status_code == 200 and r.json()["status"] == "authenticated"


def test_expired_and_unauth_tokens(client: httpx.Client, sim: SimServer) -> None:
    r = chat(client, "sim-basic-expired-x", "hi")
    assert r.status_code == 400 and "invalid-credentials" in r.text
    assert chat(client, "sim-unauth-x", "hi").status_code == 401
    sim.accounts.configure("sim-super-a", expired=True)
    assert chat(client, "sim-super-a", "hi").status_code == 400


def test_blocked(client: httpx.Client) -> None:
    r = chat(client, "sim-blocked-x", "hi")
    assert r.status_code == 403 and r.json()["error"]["code"] == "blocked-user"


def test_ratelimited(client: httpx.Client, sim: SimServer) -> None:
    assert chat(client, "sim-ratelimited-x", "hi").status_code == 429
    r = client.post("/rest/rate-limits", json={"modelName": "fast"}, headers=headers("sim-ratelimited-x"))
    assert r.json()["remainingQueries"] == 0


def test_antibot_is_http_200_with_an_in_band_code_7(client: httpx.Client) -> None:
    r = chat(client, "sim-antibot-x", "hi")
    assert r.status_code == 200
    assert r.json() == {"error": {"code": 7, "message": "Request rejected by anti-bot rules.", "details": []}}


def test_flaky_fails_the_first_n_generation_requests(client: httpx.Client, sim: SimServer) -> None:
    statuses = [chat(client, "sim-flaky3-x", "hi").status_code for _ in range(4)]
    assert statuses == [503, 503, 503, 200]
    sim.accounts.configure("sim-super-y", flaky=1, flaky_status=502)
    assert [chat(client, "sim-super-y", "hi").status_code for _ in range(2)] == [502, 200]


def test_slow_delays_the_first_byte(client: httpx.Client) -> None:
    started = time.monotonic()
    assert chat(client, "sim-slow300-x", "hi").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_challenge_until_the_flaresolverr_clearance_is_sent_with_its_user_agent(
    client: httpx.Client, sim: SimServer
) -> None:
    token = "sim-challenge-x"
    blocked = chat(client, token, "hi")
    assert blocked.status_code == 403 and "Just a moment..." in blocked.text
    assert blocked.headers["content-type"].startswith("text/html")
    solved = client.post(
        "/v1", json={"cmd": "request.get", "url": "https://grok.com", "maxTimeout": 60000}
    ).json()
    assert solved["status"] == "ok"
    jar = {c["name"]: c["value"] for c in solved["solution"]["cookies"]}
    ua = solved["solution"]["userAgent"]
    cookie = f"sso={token}; sso-rw={token}; cf_clearance={jar['cf_clearance']}; __cf_bm={jar['__cf_bm']}"
    base = {"x-statsig-id": STATSIG, "cookie": cookie}
    assert (
        client.post(CHAT, json=chat_body("hi"), headers={**base, "user-agent": "curl/8"}).status_code == 403
    )
    assert client.post(CHAT, json=chat_body("hi"), headers={**base, "user-agent": ua}).status_code == 200
    forged = {**base, "user-agent": ua, "cookie": f"sso={token}; sso-rw={token}; cf_clearance=made-up"}
    assert client.post(CHAT, json=chat_body("hi"), headers=forged).status_code == 403


def test_challenge_all_applies_to_every_account(client: httpx.Client, sim: SimServer) -> None:
    sim.config.challenge_all = True
    assert chat(client, "sim-super-a", "hi").status_code == 403


def test_flaresolverr_rejects_unknown_commands(client: httpx.Client) -> None:
    assert client.post("/v1", json={"cmd": "nope"}).status_code == 500


def test_unknown_knob_is_a_programming_error(sim: SimServer) -> None:
    with pytest.raises(ValueError, match="knob"):
        sim.accounts.configure("sim-super-a", expird=True)
    with pytest.raises(ValueError, match="tier"):
        sim.accounts.register("t", tier="gold")


def test_token_words_parse_to_knobs(sim: SimServer) -> None:
    account = sim.account("sim-heavy-flaky-slow250-antibot-bob")
    assert (account.tier, account.flaky, account.slow_ms, account.antibot) == ("heavy", 2, 250, True)
    assert sim.account("sim-bob").tier == "super"
    with pytest.raises(KeyError):
        sim.account("not-a-sim-token")
