"""The `ResponseStore` contract (core/ports.py) over every backend, beside each account store:
SQLite, Redis over TCP, Redis over Upstash REST (the shim) and DynamoDB (moto's server)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from core.ports import StoredResponse
from infra.state.factory import responses_for


@pytest.fixture
async def responses(account_store):
    store = responses_for(account_store)
    yield store
    await store.aclose()


def stored(
    rid: str, owner: str = "key-a", *, now: float | None = None, ttl: float = 3600, **kw
) -> StoredResponse:
    now = time.time() if now is None else now  # Redis expires by its own clock
    return StoredResponse(
        id=rid,
        owner=owner,
        created_at=now,
        expires_at=now + ttl,
        response=kw.get("response", {"id": rid, "object": "response", "output": [{"type": "message"}]}),
        input_items=kw.get(
            "input_items", [{"id": "msg_1", "type": "message", "role": "user", "content": "é"}]
        ),
        context=kw.get("context", []),
    )


async def test_put_then_get_returns_it_whole(responses):
    item = stored("resp_1", context=[{"type": "message", "role": "assistant", "content": "earlier"}])
    await responses.put(item)
    assert await responses.get("resp_1", owner="key-a", now=time.time()) == item
    assert await responses.get("resp_absent", owner="key-a", now=time.time()) is None


async def test_another_owner_sees_nothing_and_cannot_delete(responses):
    await responses.put(stored("resp_2"))
    now = time.time()
    assert await responses.get("resp_2", owner="key-b", now=now) is None
    assert await responses.get("resp_2", owner="", now=now) is None
    assert not await responses.delete("resp_2", owner="key-b", now=now)
    assert await responses.get("resp_2", owner="key-a", now=now) is not None


async def test_delete_once(responses):
    await responses.put(stored("resp_3"))
    now = time.time()
    assert await responses.delete("resp_3", owner="key-a", now=now)
    assert await responses.get("resp_3", owner="key-a", now=now) is None
    assert not await responses.delete("resp_3", owner="key-a", now=now)
    assert not await responses.delete("resp_never", owner="key-a", now=now)


async def test_expired_responses_are_gone(responses):
    now = time.time()
    await responses.put(stored("resp_old", now=now - 10, ttl=0.001))
    await responses.put(stored("resp_live", now=now))
    await asyncio.sleep(0.01)
    later = time.time()
    assert await responses.get("resp_old", owner="key-a", now=later) is None
    assert not await responses.delete("resp_old", owner="key-a", now=later)
    assert await responses.get("resp_live", owner="key-a", now=later) is not None
    assert await responses.get("resp_live", owner="key-a", now=now + 7200) is None  # past its expiry


async def test_large_responses_round_trip(responses):
    """Bigger than one DynamoDB item (400 KB) even once compressed: it is kept in parts."""
    noise = os.urandom(600_000).hex()  # random: does not compress below the item limit
    item = stored(
        "resp_big", input_items=[{"id": "msg_1", "type": "message", "role": "user", "content": noise}]
    )
    await responses.put(item)
    got = await responses.get("resp_big", owner="key-a", now=time.time())
    assert got is not None and got.input_items[0]["content"] == noise
    assert await responses.delete("resp_big", owner="key-a", now=time.time())
    assert await responses.get("resp_big", owner="key-a", now=time.time()) is None


async def test_a_later_put_replaces(responses):
    await responses.put(stored("resp_4", response={"id": "resp_4", "status": "in_progress"}))
    await responses.put(stored("resp_4", response={"id": "resp_4", "status": "completed"}))
    got = await responses.get("resp_4", owner="key-a", now=time.time())
    assert got is not None and got.response["status"] == "completed"
