"""Proof of atomicity: several processes, each with many concurrent leases, against one store.

For every store: the leases granted add up exactly to the quota units there were (no unit spent
twice, none lost), every lease id is unique, released leases return their in-flight count, and
leases whose holders "crashed" come back by themselves once they expire.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp

import pytest

from core.accounts import Lease, NewAccount, Outcome, Quota, account_id_for
from core.catalog import Tier
from tests.fixtures.stores import StoreSpec, open_store

NOW = 1_000_000.0
TTL = 60.0
ACCOUNTS = 4
UNITS = 12  # per account: 48 units for 3 processes x 12 concurrent workers
PROCESSES = 3
WORKERS = 12
CRASH_EVERY = 5  # every 5th lease of a process is never released


def _contend(spec: StoreSpec, queue) -> None:
    async def run() -> dict[str, object]:
        store = open_store(spec)
        granted: list[str] = []
        kept: list[tuple[str, str]] = []  # (lease id, account id) never released
        errors: list[str] = []

        async def worker() -> None:
            while True:
                try:
                    lease = await store.lease(mode="fast", tiers=[Tier.BASIC, Tier.SUPER], now=NOW, ttl=TTL)
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
                if lease is None:
                    return
                granted.append(lease.id)
                if len(granted) % CRASH_EVERY == 0:
                    kept.append((lease.id, lease.account_id))
                    continue
                await asyncio.sleep(0)
                try:
                    if not await store.release(lease, Outcome.success(), NOW + 1):
                        errors.append("a fresh lease did not release")
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")

        try:
            await asyncio.gather(*(worker() for _ in range(WORKERS)))
        finally:
            await store.aclose()
        return {"granted": granted, "kept": kept, "errors": errors}

    queue.put(asyncio.run(run()))


@pytest.mark.slow
async def test_processes_never_spend_a_unit_twice(store_spec):
    store = open_store(store_spec)
    try:
        tokens = [f"contend-{i}" for i in range(ACCOUNTS)]
        await store.add(
            [NewAccount(t, Tier.BASIC if i % 2 else Tier.SUPER) for i, t in enumerate(tokens)], NOW
        )
        for t in tokens:
            assert await store.set_quota(account_id_for(t), "fast", Quota(UNITS, 60, 72000, NOW + 72000))

        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        procs = [ctx.Process(target=_contend, args=(store_spec, queue)) for _ in range(PROCESSES)]
        for p in procs:
            p.start()
        results = [await asyncio.to_thread(queue.get, True, 120) for _ in procs]
        for p in procs:
            p.join(10)
        assert [r["errors"] for r in results] == [[]] * PROCESSES

        granted = [lease_id for r in results for lease_id in r["granted"]]
        assert len(granted) == ACCOUNTS * UNITS  # every unit spent once: none twice, none lost
        assert len(set(granted)) == len(granted)
        kept = [pair for r in results for pair in r["kept"]]
        assert kept  # some holders "crashed"
        in_flight = {t: (await store.get(account_id_for(t))).in_flight for t in tokens}
        assert sum(in_flight.values()) == len(kept)  # the released ones came back, the kept ones did not
        for t in tokens:
            assert (await store.get(account_id_for(t))).quotas["fast"].remaining == 0

        # After the expiry, a later lease reclaims the crashed holders' slots.
        later = await store.lease(mode="auto", tiers=[Tier.BASIC, Tier.SUPER], now=NOW + TTL + 1, ttl=TTL)
        assert later is not None
        assert await store.release(later, Outcome.success(), NOW + TTL + 2)
        after = [await store.get(account_id_for(t)) for t in tokens]
        assert [a.in_flight for a in after] == [0] * ACCOUNTS
        assert [a.quotas["fast"].remaining for a in after] == [0] * ACCOUNTS  # spent units stay spent
        lease_id, account_id = kept[0]
        stale = Lease(lease_id, account_id, "", Tier.BASIC, "fast", NOW + TTL)
        assert not await store.release(stale, Outcome.success(), NOW + TTL + 3)
    finally:
        await store.aclose()
