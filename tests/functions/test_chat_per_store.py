"""The gateway serves chat with each store chosen by GROKGATE_STORE: SQLite, Redis over TCP,
Upstash REST (the shim in front of a real redis-server) and DynamoDB (moto's server).

The store is built by the gateway's own wiring from the setting, exactly as in production; the
test then reads the account back through that store to see the lease released and the unit spent.
"""

from __future__ import annotations

import time
import uuid

import openai
import pytest

from core.accounts import NewAccount
from core.catalog import Tier
from tests.fixtures.gateway import start_gateway

FAST = "grok-4.20-0309-non-reasoning"


def store_env(kind: str, store_servers, tmp_path, monkeypatch) -> dict[str, str]:
    if kind == "sqlite":
        return {"GROKGATE_STORE": f"sqlite:///{tmp_path / 'pool.db'}"}
    if kind == "redis-tcp":
        # A database of its own, so the default key prefix meets no other test's keys.
        return {"GROKGATE_STORE": store_servers.redis().url.rstrip("/") + "/7"}
    if kind == "upstash-rest":
        shim = store_servers.shim()
        return {
            "GROKGATE_STORE": "upstash",
            "UPSTASH_REDIS_REST_URL": shim.url,
            "UPSTASH_REDIS_REST_TOKEN": shim.token,
        }
    # DynamoDB: endpoint, region and credentials come from the standard AWS variables.
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", store_servers.moto().url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return {"GROKGATE_STORE": f"dynamodb://chat{uuid.uuid4().hex[:10]}"}


@pytest.mark.parametrize("kind", ["sqlite", "redis-tcp", "upstash-rest", "dynamodb"])
def test_chat_through_each_store(kind, sim, store_servers, tmp_path, monkeypatch):
    env = {
        **store_env(kind, store_servers, tmp_path, monkeypatch),
        "GROKGATE_UPSTREAM_URL": sim.url,
        "GROKGATE_ASSETS_URL": sim.url,
        "GROKGATE_API_KEYS": "k",
    }
    token = f"sim-basic-{kind}-{uuid.uuid4().hex[:6]}"
    gw = start_gateway(env, tmp_path)
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0)
    try:
        gw.call(gw.deps.store.add([NewAccount(token, Tier.BASIC)], time.time()))
        reply = client.chat.completions.create(model=FAST, messages=[{"role": "user", "content": "hello"}])
        assert reply.choices[0].message.content
        streamed = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in client.chat.completions.create(
                model=FAST, stream=True, messages=[{"role": "user", "content": "hello again"}]
            )
            if chunk.choices
        )
        assert streamed

        def settled():
            page = gw.call(gw.deps.store.list())
            return next(a for a in page.items if a.token == token)

        deadline = time.monotonic() + 5
        account = settled()
        while account.in_flight and time.monotonic() < deadline:  # released just after the last write
            time.sleep(0.02)
            account = settled()
        assert account.in_flight == 0
        assert account.use_count == 2
        assert account.quotas["fast"].remaining == account.quotas["fast"].total - 2
    finally:
        client.close()
        # The Redis-backed stores share a server with other tests: leave no account behind.
        page = gw.call(gw.deps.store.list())
        for account in page.items:
            gw.call(gw.deps.store.remove(account.id))
        gw.stop()
