"""Client keys and the usage ledger over the real SQLite record store, with a fake clock:
allowlists, the limits' windows, tickets, and a ledger that keeps what it could not write."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import AuthenticationFailed, PermissionDenied, RateLimited, StoreUnavailable
from core.keys import ClientKey
from core.services.keys import KeyService, allow_model
from core.services.usage import UsageEntry, UsageLedger
from infra.state.sqlite_records import SQLiteRecordStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0 + 5  # five seconds into a minute

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def parts(tmp_path: Any) -> Any:
    records = SQLiteRecordStore(tmp_path / "records.db")
    clock = Clock()
    ledger = UsageLedger(records, clock=clock, retention_days=30, flush_seconds=0)
    keys = KeyService(records, ledger, clock=clock, ticket_ttl=60)
    yield keys, ledger, clock, records
    await records.aclose()


def test_allowlists_take_ids_and_globs() -> None:
    key = ClientKey("k", "n", "h", "sk-gg-abcd", 0.0, models=("grok-4.20-*", "grok-imagine-image"))
    assert key.allows("grok-4.20-0309-reasoning") and key.allows("grok-imagine-image")
    assert not key.allows("grok-imagine-video")
    assert ClientKey("k", "n", "h", "s", 0.0).allows("anything")  # no allowlist: every model
    with pytest.raises(PermissionDenied):
        allow_model(key, "grok-imagine-video")
    allow_model(None, "anything")  # root keys have no allowlist


async def test_a_key_round_trips_and_its_secret_is_only_hashed(parts: Any) -> None:
    keys, _, _, records = parts
    key, secret = await keys.create({"name": "ci", "rpm": 3, "models": ["grok-*"]})
    assert await keys.authenticate(secret) == key
    assert await keys.authenticate(secret + "x") is None
    stored, _ = await records.read(f"client-key:{key.id}", now=0)
    assert secret not in str(stored) and stored["key_hash"] == key.key_hash
    assert [k.id for k in await keys.list()] == [key.id]
    assert (await keys.change(key.id, {"rpm": None})).rpm is None
    assert await keys.revoke(key.id) and not await keys.revoke(key.id)
    assert await keys.authenticate(secret) is None and await keys.list() == []


async def test_rpm_is_a_fixed_minute_window(parts: Any) -> None:
    keys, _, clock, _ = parts
    key, _ = await keys.create({"name": "a", "rpm": 2})
    first = await keys.admit(key)
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    await keys.admit(key)
    with pytest.raises(RateLimited) as info:
        await keys.admit(key)
    assert info.value.headers["retry-after"] == "55"  # until the minute is over
    clock.now += 55
    assert (await keys.admit(key)).headers["x-ratelimit-remaining-requests"] == "1"


async def test_daily_limits_and_expiry(parts: Any) -> None:
    keys, ledger, clock, _ = parts
    key, _ = await keys.create({"name": "a", "daily_requests": 1, "daily_tokens": 100})
    await keys.admit(key)
    with pytest.raises(RateLimited):
        await keys.admit(key)
    tokens, _ = await keys.create({"name": "b", "daily_tokens": 100})
    await ledger.record(UsageEntry(tokens.id, "m", "/v1/chat/completions", 200, 60, 40))
    with pytest.raises(RateLimited) as info:
        await keys.admit(tokens)
    assert int(info.value.headers["retry-after"]) > 3600  # until midnight UTC
    clock.now += 86400  # a new day
    await keys.admit(tokens)
    expiring, _ = await keys.create({"name": "c", "expires_at": clock.now + 10})
    await keys.admit(expiring)
    clock.now += 10
    with pytest.raises(AuthenticationFailed):
        await keys.admit(expiring)


async def test_concurrency_tickets_come_back_and_expire(parts: Any) -> None:
    keys, _, clock, _ = parts
    key, _ = await keys.create({"name": "a", "concurrency": 2})
    one, two = await keys.admit(key), await keys.admit(key)
    with pytest.raises(RateLimited):
        await keys.admit(key)
    await keys.release(one)
    await keys.release(one)  # twice is once
    three = await keys.admit(key)
    with pytest.raises(RateLimited):
        await keys.admit(key)
    clock.now += 61  # a dead instance's tickets expire
    await keys.admit(key)
    assert two.ticket and three.ticket


class Down:
    """A record store whose writes fail until `up` (a store outage, as the ledger sees it)."""

    def __init__(self, records: SQLiteRecordStore) -> None:
        self.records = records
        self.up = False

    async def read(self, key: str, *, now: float) -> Any:
        return await self.records.read(key, now=now)

    async def write(self, key: str, value: Any, **kw: Any) -> bool:
        if not self.up:
            raise StoreUnavailable("down")
        return await self.records.write(key, value, **kw)

    async def count(self, key: str, **kw: Any) -> int:
        return await self.records.count(key, **kw)


async def test_the_ledger_merges_entries_and_keeps_what_it_could_not_write(parts: Any) -> None:
    _, _, clock, records = parts
    down = Down(records)
    ledger = UsageLedger(down, clock=clock, retention_days=30, flush_seconds=60)  # type: ignore[arg-type]
    for status in (200, 200, 429):
        await ledger.record(UsageEntry("k1", "grok-4.20-0309", "/v1/chat/completions", status, 10, 5))
    await ledger.record(UsageEntry("k1", "grok-4.20-0309", "/v1/chat/completions", 502, 10, 0, "transient"))
    with pytest.raises(StoreUnavailable):
        await ledger.flush()
    assert (await ledger.today("k1"))["requests"] == 4  # still counted, pending
    down.up = True
    rows = await ledger.query(clock.now, clock.now, "model")
    assert rows == [
        {
            "model": "grok-4.20-0309",
            "requests": 4,
            "input_tokens": 40,
            "output_tokens": 15,
            "statuses": {"200": 2, "429": 1, "502": 1},
            "routes": {"/v1/chat/completions": 4},
            "failures": {"transient": 1},
        }
    ]
    by_day = await ledger.query(clock.now - 86400, clock.now, "day")
    assert len(by_day) == 1 and by_day[0]["requests"] == 4
