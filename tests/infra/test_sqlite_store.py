"""The embedded store's atomic semantics (the contract suite runs the rest over every store)."""

import asyncio
import multiprocessing as mp

import pytest

from core.accounts import AccountStatus, NewAccount, Outcome, OutcomeKind, Quota
from core.catalog import Tier
from infra.state.sqlite import SQLiteAccountStore

NOW = 1_000_000.0


@pytest.fixture
async def store(tmp_path):
    s = SQLiteAccountStore(tmp_path / "pool.db")
    yield s
    await s.close()


async def test_two_concurrent_leases_on_one_account_with_one_unit_left(store, tmp_path):
    await store.add([NewAccount("only", Tier.BASIC)], NOW)
    account = (await store.list()).items[0]
    await store.set_quota(account.id, "fast", Quota(1, 60, 3600, NOW + 3600))
    other = SQLiteAccountStore(tmp_path / "pool.db")  # a second connection, as another instance would be
    try:
        results = await asyncio.gather(
            store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=60),
            other.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=60),
        )
    finally:
        await other.close()
    assert sum(r is not None for r in results) == 1
    after = await store.get(account.id)
    assert after.quotas["fast"].remaining == 0
    assert after.in_flight == 1


async def test_release_applies_once_and_lease_expiry_returns_in_flight(store):
    await store.add([NewAccount("a", Tier.BASIC)], NOW)
    lease = await store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=30)
    assert (await store.get(lease.account_id)).in_flight == 1
    assert await store.release(lease, Outcome.success(), NOW + 1)
    assert not await store.release(lease, Outcome.success(), NOW + 2)  # idempotent
    account = await store.get(lease.account_id)
    assert account.in_flight == 0 and account.use_count == 1
    assert account.quotas["fast"].remaining == 59

    crashed = await store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=30)
    assert (await store.get(crashed.account_id)).in_flight == 1
    # A later lease after the expiry reclaims the crashed holder's slot (the unit stays spent).
    later = await store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW + 31, ttl=30)
    account = await store.get(later.account_id)
    assert account.in_flight == 1
    assert account.quotas["fast"].remaining == 57
    assert not await store.release(crashed, Outcome.success(), NOW + 32)


async def test_lowest_sufficient_tier_first_and_statuses_excluded(store):
    await store.add(
        [NewAccount("s", Tier.SUPER), NewAccount("b", Tier.BASIC), NewAccount("h", Tier.HEAVY)], NOW
    )
    lease = await store.lease(mode="fast", tiers=[Tier.BASIC, Tier.SUPER, Tier.HEAVY], now=NOW, ttl=60)
    assert lease.tier is Tier.BASIC and lease.token == "b"
    await store.release(lease, Outcome(OutcomeKind.EXPIRED, "invalid-credentials"), NOW)
    lease = await store.lease(mode="fast", tiers=[Tier.BASIC, Tier.SUPER, Tier.HEAVY], now=NOW, ttl=60)
    assert lease.tier is Tier.SUPER
    await store.release(lease, Outcome(OutcomeKind.RATE_LIMITED, "429", cooling_until=NOW + 100), NOW)
    lease = await store.lease(mode="fast", tiers=[Tier.BASIC, Tier.SUPER, Tier.HEAVY], now=NOW, ttl=60)
    assert lease.tier is Tier.HEAVY
    heavy_id = lease.account_id
    await store.release(lease, Outcome.success(), NOW)
    await store.set_status(heavy_id, AccountStatus.DISABLED, "operator", NOW)
    assert await store.lease(mode="fast", tiers=[Tier.SUPER, Tier.HEAVY], now=NOW + 1, ttl=60) is None
    # Cooling ends by itself; the rate-limited mode's window was emptied until then.
    lease = await store.lease(mode="auto", tiers=[Tier.SUPER], now=NOW + 101, ttl=60)
    assert lease is not None and lease.tier is Tier.SUPER
    assert (await store.get(lease.account_id)).status is AccountStatus.ACTIVE


async def test_windows_refill_when_they_end(store):
    await store.add([NewAccount("a", Tier.BASIC)], NOW)
    account = (await store.list()).items[0]
    await store.set_quota(account.id, "expert", Quota(0, 8, 100, NOW + 100))
    assert await store.lease(mode="expert", tiers=[Tier.BASIC], now=NOW + 50, ttl=60) is None
    lease = await store.lease(mode="expert", tiers=[Tier.BASIC], now=NOW + 100, ttl=60)
    assert lease is not None
    assert (await store.get(account.id)).quotas["expert"] == Quota(7, 8, 100, NOW + 200)


async def test_listing_pages_and_filters(store):
    await store.add([NewAccount(f"tok{i}", Tier.SUPER if i % 2 else Tier.BASIC) for i in range(7)], NOW)
    page = await store.list(limit=3)
    assert len(page.items) == 3 and page.next_cursor
    rest = await store.list(cursor=page.next_cursor, limit=10)
    assert len(rest.items) == 4 and rest.next_cursor is None
    assert len((await store.list(tier=Tier.SUPER)).items) == 3
    assert await store.remove(page.items[0].id)
    assert not await store.remove(page.items[0].id)
    assert len((await store.list()).items) == 6


def _lease_many(path: str, count: int, queue) -> None:
    async def run() -> None:
        store = SQLiteAccountStore(path)
        got = 0
        for _ in range(count):
            if await store.lease(mode="expert", tiers=[Tier.BASIC], now=NOW, ttl=60):
                got += 1
        await store.close()
        queue.put(got)

    asyncio.run(run())


async def test_processes_never_spend_a_unit_twice(store, tmp_path):
    await store.add([NewAccount(f"t{i}", Tier.BASIC) for i in range(3)], NOW)  # 3 accounts x 8 expert units
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_lease_many, args=(str(tmp_path / "pool.db"), 15, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sum(queue.get(timeout=5) for _ in procs) == 24


async def test_the_wal_starts_over_under_a_steady_load(store, tmp_path, monkeypatch):
    """Checkpoints must catch up with the loop's commits, or the log only grows."""
    import infra.state.sqlite as module

    monkeypatch.setattr(module, "CHECKPOINT_EVERY", 50)
    await store.add([NewAccount(f"w{i}", Tier.HEAVY) for i in range(8)], NOW)
    sizes = []
    for i in range(1000):
        lease = await store.lease(mode="fast", tiers=[Tier.HEAVY], now=NOW + i, ttl=60)
        await store.release(lease, Outcome.success(), NOW + i)
        if i in (199, 999):
            sizes.append((tmp_path / "pool.db-wal").stat().st_size)
    assert sizes[1] < 2 * sizes[0]  # a log that never starts over would be five times larger
