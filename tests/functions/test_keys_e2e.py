"""Client keys, the usage ledger, metrics and the overhead header, end to end: the gateway on a
loopback port over the simulator, driven by the official SDKs and the admin API over HTTP."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.catalog import Tier
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, gateways

ROOT = "root-key"
ADMIN = "admin-key"
AUTO = "grok-4.20-0309"
FAST = "grok-4.20-0309-non-reasoning"

Start = Callable[..., Gateway]


POOL = [("sim-heavy-unlimited-a", Tier.HEAVY), ("sim-heavy-unlimited-b", Tier.HEAVY)]


@pytest.fixture
def gateway(sim: SimServer, tmp_path: Path) -> Iterator[Start]:
    with gateways(sim, tmp_path, api_keys=ROOT, admin_key=ADMIN) as start:
        yield lambda **env: start(POOL, **env)


def admin(gw: Gateway) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)


def new_key(gw: Gateway, **fields: Any) -> dict[str, Any]:
    with admin(gw) as http:
        response = http.post("/admin/api/keys", json={"name": "team-a", **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def oai(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=30)


def ask(text: str = "hi #sim tokens=3") -> list[Any]:
    return [{"role": "user", "content": text}]


def test_the_operators_scenario(gateway: Start) -> None:
    """rpm 2 and a one-model allowlist: the third call in a minute is a 429 with Retry-After, another
    model a 403; the ledger counts the two answers and /metrics shows them."""
    gw = gateway()
    created = new_key(gw, rpm=2, models=[AUTO])
    secret = created["key"]
    assert secret.startswith("sk-gg-")
    client = oai(gw, secret)
    told = []
    for _ in range(2):
        reply = client.chat.completions.create(model=AUTO, messages=ask())
        told.append(reply.usage)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=AUTO, messages=ask())
    headers = info.value.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-limit-requests"] == "2" and headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"].endswith("s")
    assert info.value.body["code"] == "key_rate_limited"  # type: ignore[index]

    fresh = new_key(gw, models=[AUTO])  # no rate limit: the allowlist alone
    with pytest.raises(openai.PermissionDeniedError) as denied:
        oai(gw, fresh["key"]).chat.completions.create(model=FAST, messages=ask())
    assert denied.value.body["code"] == "model_not_allowed"  # type: ignore[index]
    claude = anthropic.Anthropic(base_url=gw.url, api_key=fresh["key"], max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as in_anthropic:
        claude.messages.create(model=FAST, max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert in_anthropic.value.body["type"] == "error"  # type: ignore[index]

    with admin(gw) as http:
        usage = http.get("/admin/api/usage", params={"group_by": "key"}).json()
        metrics = http.get("/metrics").text
    row = next(r for r in usage["data"] if r["key"] == created["id"])
    assert row["statuses"] == {"200": 2, "429": 1}
    assert row["input_tokens"] == sum(u.prompt_tokens for u in told)
    assert row["output_tokens"] == sum(u.completion_tokens for u in told)
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    served = {
        (s.labels["route"], s.labels["model"], s.labels["status"]): s.value
        for s in families["grokgate_requests"].samples
        if s.name == "grokgate_requests_total"
    }
    assert served[("/v1/chat/completions", AUTO, "200")] >= 2
    assert served[("/v1/chat/completions", "", "429")] >= 1  # refused before the body was read
    assert served[("/v1/chat/completions", FAST, "403")] >= 1
    assert any(s.name == "grokgate_ttfb_seconds_bucket" for s in families["grokgate_ttfb_seconds"].samples)
    accounts = {(s.labels["state"], s.labels["tier"]): s.value for s in families["grokgate_accounts"].samples}
    assert accounts[("active", "heavy")] == 2


def test_keys_in_the_admin_api(gateway: Start) -> None:
    gw = gateway()
    created = new_key(gw, daily_requests=100, expires_at=time.time() + 3600)
    with admin(gw) as http:
        listing = http.get("/admin/api/keys").json()["data"]
        assert [k["id"] for k in listing] == [created["id"]]
        assert created["key"] not in str(listing)  # the secret is shown once, at creation
        assert listing[0]["key"].endswith("…")
        one = http.get(f"/admin/api/keys/{created['id']}").json()
        assert one["daily_requests"] == 100
        patched = http.patch(
            f"/admin/api/keys/{created['id']}", json={"rpm": 5, "daily_requests": None}
        ).json()
        assert patched["rpm"] == 5 and patched["daily_requests"] is None
        assert (
            http.patch(f"/admin/api/keys/{created['id']}", json={"rpm": "5"}).status_code == 400
        )  # strict types
        assert http.patch(f"/admin/api/keys/{created['id']}", json={"rpm": 0}).status_code == 400
        assert (
            http.patch(f"/admin/api/keys/{created['id']}", json={"rmp": 5}).status_code == 400
        )  # a typo is named
        assert http.post("/admin/api/keys", json={"models": ["x"]}).status_code == 400  # a name is needed
        assert http.get("/admin/api/keys", headers={"Authorization": "Bearer nope"}).status_code == 401
        me = oai(gw, created["key"]).get("/me", cast_to=object)  # type: ignore[call-overload]
        assert me["id"] == created["id"] and me["rpm"] == 5 and me["usage_today"] == {}
        assert http.delete(f"/admin/api/keys/{created['id']}").json()["deleted"] is True
        assert http.get(f"/admin/api/keys/{created['id']}").status_code == 404
    time.sleep(2.1)  # other instances' caches of the key last two seconds; this one dropped it at once
    with pytest.raises(openai.AuthenticationError):
        oai(gw, created["key"]).models.list()


def test_expired_and_unknown_keys_are_401(gateway: Start) -> None:
    gw = gateway()
    expired = new_key(gw, expires_at=time.time() - 1)
    with pytest.raises(openai.AuthenticationError) as info:
        oai(gw, expired["key"]).chat.completions.create(model=AUTO, messages=ask())
    assert info.value.body["code"] == "key_expired"  # type: ignore[index]
    with pytest.raises(openai.AuthenticationError):
        oai(gw, "sk-gg-not-a-key").models.list()
    assert oai(gw, ROOT).models.list().data  # root keys keep working, unlimited


def test_concurrency_is_released_when_a_stream_ends_and_on_disconnect(gateway: Start) -> None:
    gw = gateway()
    key = new_key(gw, concurrency=1)["key"]
    body = {"model": AUTO, "stream": True, "messages": ask("x #sim tokens=400 delay_ms=5")}
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=30) as http:
        with http.stream("POST", gw.url + "/v1/chat/completions", json=body, headers=headers) as first:
            lines = first.iter_lines()  # kept: a dropped line iterator closes the response
            next(lines)  # the first stream is running
            second = http.post(
                gw.url + "/v1/chat/completions", json={**body, "stream": False}, headers=headers
            )
            assert second.status_code == 429 and second.headers["retry-after"] == "1"
        # The first client left mid-stream: its ticket comes back when the gateway notices.
        deadline = time.monotonic() + 5
        while True:
            again = http.post(
                gw.url + "/v1/chat/completions",
                json={**body, "stream": False, "messages": ask()},
                headers=headers,
            )
            if again.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert again.status_code == 200


def test_the_overhead_header_is_below_the_total(gateway: Start) -> None:
    gw = gateway()
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {ROOT}"}) as http:
        began = time.perf_counter()
        response = http.post(
            gw.url + "/v1/chat/completions",
            json={"model": AUTO, "messages": ask("x #sim tokens=3 ttfb_ms=300")},
        )
        total_ms = (time.perf_counter() - began) * 1000
        assert response.status_code == 200
        overhead = float(response.headers["x-grokgate-overhead-ms"])
        assert 0 <= overhead < total_ms - 300  # the upstream's 300 ms are not the gateway's
        models = http.get(gw.url + "/v1/models")
        assert float(models.headers["x-grokgate-overhead-ms"]) >= 0
        refused = http.get(gw.url + "/v1/models", headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 401 and "x-grokgate-overhead-ms" in refused.headers


def test_request_logs_carry_no_secret(gateway: Start, caplog: pytest.LogCaptureFixture) -> None:
    gw = gateway()
    key = new_key(gw, rpm=100)["key"]
    caplog.set_level(logging.INFO, logger="grokgate")
    oai(gw, key).chat.completions.create(model=AUTO, messages=ask())
    with pytest.raises(openai.AuthenticationError):
        oai(gw, "sk-gg-wrong-secret-value").models.list()
    text = caplog.text
    assert "request " in text and "status=200" in text and "key_id=key_" in text
    for secret in (key, ROOT, ADMIN, "sim-heavy-unlimited-a", "sk-gg-wrong-secret-value"):
        assert secret not in text


def serve(env: dict[str, str], workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`grokgate serve` as its own process on a free port; returns it and its base URL."""
    from tests.fixtures.stores import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "functions.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir,
        env={**os.environ, **env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/health", timeout=1).status_code in (200, 503):
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("grokgate serve did not start")


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_limits_hold_across_two_gateway_processes_on_one_store(
    sim: SimServer, tmp_path: Path, store: str, store_servers: Any
) -> None:
    """Two `grokgate serve` processes share one store and one key: 12 concurrent calls against
    rpm 5 let exactly 5 through; concurrency 2 lets 2 streams run at once across both."""
    sim.reset()
    url = (
        f"sqlite:///{tmp_path / 'shared.db'}"
        if store == "sqlite"
        else store_servers.redis().url.rstrip("/") + "/9"
    )
    env = {
        "GROKGATE_UPSTREAM_URL": sim.url,
        "GROKGATE_ASSETS_URL": sim.url,
        "GROKGATE_API_KEYS": ROOT,
        "GROKGATE_ADMIN_KEY": ADMIN,
        "GROKGATE_STORE": url,
        "GROKGATE_LOG_LEVEL": "WARNING",
    }
    one, first = serve(env, tmp_path)
    two, second = serve(env, tmp_path)
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30) as admin_http:
            imported = admin_http.post(
                first + "/admin/api/accounts/import?tier=heavy", content=b"sim-heavy-unlimited-a\n"
            )
            assert imported.status_code == 200, imported.text
            made = admin_http.post(first + "/admin/api/keys", json={"name": f"rpm-{store}", "rpm": 5})
            rpm_key = made.json()["key"]
            made = admin_http.post(
                first + "/admin/api/keys", json={"name": f"conc-{store}", "concurrency": 2}
            )
            both_key = made.json()["key"]

        async def burst(key: str, body: dict[str, Any], n: int) -> list[int]:
            async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {key}"}) as http:
                calls = [
                    http.post(base + "/v1/chat/completions", json=body) for base in [first, second] * (n // 2)
                ]
                return [r.status_code for r in await asyncio.gather(*calls)]

        # Inside one minute window (a burst that straddles a minute boundary would see two).
        if 60 - time.time() % 60 < 10:
            time.sleep(60 - time.time() % 60 + 0.5)
        statuses = asyncio.run(burst(rpm_key, {"model": AUTO, "messages": ask()}, 12))
        assert sorted(statuses) == [200] * 5 + [429] * 7
        slow = {"model": AUTO, "messages": ask("x #sim tokens=40 delay_ms=20")}  # ~0.8 s each
        statuses = asyncio.run(burst(both_key, slow, 6))
        assert sorted(statuses) == [200] * 2 + [429] * 4
        assert asyncio.run(burst(both_key, {"model": AUTO, "messages": ask()}, 2)) == [
            200,
            200,
        ]  # all given back
    finally:
        for proc in (one, two):
            proc.terminate()
            proc.wait(15)
