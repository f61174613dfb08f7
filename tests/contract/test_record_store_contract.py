"""The `RecordStore` contract (core/ports.py) over every backend, beside each account store."""

from __future__ import annotations

import asyncio

import pytest

from infra.state.factory import records_for

NOW = 1_000_000.0


@pytest.fixture
async def records(account_store):
    store = records_for(account_store)
    yield store
    await store.aclose()


async def test_write_is_a_compare_and_set(records):
    assert await records.read("a", now=NOW) == (None, 0)
    assert await records.write("a", {"n": 1}, version=0, now=NOW)
    assert not await records.write("a", {"n": 9}, version=0, now=NOW)  # someone wrote first
    assert await records.read("a", now=NOW) == ({"n": 1}, 1)
    assert await records.write("a", {"n": 2, "deep": {"x": [1, "é"]}}, version=1, now=NOW)
    assert not await records.write("a", {"n": 3}, version=1, now=NOW)
    assert await records.read("a", now=NOW) == ({"n": 2, "deep": {"x": [1, "é"]}}, 2)


async def test_concurrent_writers_one_wins(records):
    await records.write("c", {"n": 0}, version=0, now=NOW)
    results = await asyncio.gather(*(records.write("c", {"n": i}, version=1, now=NOW) for i in range(8)))
    assert results.count(True) == 1
    value, version = await records.read("c", now=NOW)
    assert version == 2 and value["n"] == results.index(True)


async def test_records_expire(records):
    import time

    now = time.time()  # Redis expires by its own clock
    assert await records.write("t", {"x": 1}, version=0, now=now, ttl=3600)
    assert (await records.read("t", now=now))[0] == {"x": 1}
    assert await records.write("gone", {"x": 1}, version=0, now=now - 10, ttl=0.001)
    await asyncio.sleep(0.01)
    assert await records.read("gone", now=time.time()) == (None, 0)
    assert await records.write("gone", {"x": 2}, version=0, now=time.time())  # absent again


async def test_counters_count_within_their_window(records):
    import time

    now = time.time()
    counts = await asyncio.gather(*(records.count("k", now=now, window=60) for _ in range(5)))
    assert sorted(counts) == [1, 2, 3, 4, 5]
    assert await records.count("other", now=now, window=60) == 1
    assert await records.count("short", now=now - 10, window=0.001) == 1
    await asyncio.sleep(0.01)
    assert await records.count("short", now=time.time(), window=60) == 1


async def test_a_large_record_round_trips(records):
    # Scraped statsig inputs run to several KiB; an attribute that is also an index key may not.
    value = {"curves": [[i, "x" * 40] for i in range(200)]}
    assert await records.write("big", value, version=0, now=NOW)
    assert await records.read("big", now=NOW) == (value, 1)
