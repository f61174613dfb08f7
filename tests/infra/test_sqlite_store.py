"""The embedded store's atomic semantics (the contract suite runs the rest over every store)."""

import asyncio
import multiprocessing as mp
import sqlite3

import pytest

from core.accounts import AccountStatus, NewAccount, Outcome, OutcomeKind, Quota
from core.catalog import Tier
from infra.state.sqlite import SQLiteAccountStore

NOW = 1_000_000.0


@pytest.fixture
async def store(tmp_path):
    s = SQLiteAccountStore(tmp_path / "pool.db")
    yield s
    await s.aclose()


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
        await other.aclose()
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
        await store.aclose()
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


# -- the layout: SQL fast paths, lower-bound ranking copies, upkeep, migration -------------------

FAST_OUTCOMES = [
    Outcome.success(),
    Outcome(OutcomeKind.SUCCESS, refund=True),
    Outcome(OutcomeKind.CANCELLED),
    Outcome(OutcomeKind.CANCELLED, refund=True),
]


async def _state(store, name, account_id, held):
    """Put the account in a named state, using a first lease where an outcome does it."""
    if name == "reason":
        await store.release(held, Outcome(OutcomeKind.TRANSIENT, "upstream 502"), NOW + 1)
    elif name == "cooling":
        await store.release(held, Outcome(OutcomeKind.RATE_LIMITED, "429", cooling_until=NOW + 100), NOW + 1)
    elif name == "expired":
        await store.release(held, Outcome(OutcomeKind.EXPIRED, "invalid-credentials"), NOW + 1)
    elif name == "blocked":
        await store.release(held, Outcome(OutcomeKind.BLOCKED, "blocked-user"), NOW + 1)
    elif name == "disabled":
        await store.set_status(account_id, AccountStatus.DISABLED, "by hand", NOW + 1)
    elif name == "full":  # a refund cannot go past the total
        await store.set_quota(account_id, "fast", Quota(60, 60, 3600, NOW + 3600))


@pytest.mark.parametrize("state", ["active", "reason", "cooling", "expired", "blocked", "disabled", "full"])
@pytest.mark.parametrize(
    "outcome", FAST_OUTCOMES, ids=lambda o: f"{o.kind.value}{'-refund' if o.refund else ''}"
)
async def test_sql_release_equals_apply_outcome(store, state, outcome):
    from core.selection.policy import apply_outcome
    from infra.state.sqlite_statements import RELEASE_SQL

    assert outcome.kind in RELEASE_SQL and outcome.quota is None  # the SQL path, not the Python one
    await store.add([NewAccount("a", Tier.BASIC)], NOW)
    first = await store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=600)
    second = await store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=600)
    await _state(store, state, first.account_id, first)
    before = await store.get(first.account_id)
    assert await store.release(second, outcome, NOW + 5)
    assert await store.get(first.account_id) == apply_outcome(before, "fast", outcome, NOW + 5)


async def test_leases_choose_what_the_policy_would_over_the_whole_pool(store):
    """Random traffic over several modes, held leases, outcomes, operator actions and a clock that
    sometimes steps back: each lease takes an account whose exact rank is the best of the pool,
    although quota rows only carry lower bounds of the in-flight count and last use."""
    import random

    from core.selection.policy import Candidate, is_usable, rank_key

    rng = random.Random(7)
    await store.add([NewAccount(f"p{i}", Tier.BASIC if i % 3 else Tier.SUPER) for i in range(12)], NOW)
    held, now = [], NOW
    for step in range(400):
        now += rng.choice([0.0, 0.5, 1.0, 3.0, -2.0])
        action = rng.random()
        if action < 0.45 or not held:
            mode = rng.choice(["auto", "fast", "expert"])
            tiers = rng.choice([[Tier.BASIC], [Tier.BASIC, Tier.SUPER], [Tier.SUPER]])
            pool = (await store.list(limit=100)).items
            keys = {
                a.id: rank_key(Candidate(a.id, a.tier, a.quotas[mode].remaining, a.in_flight, a.last_used_at))
                for a in pool
                if a.tier in tiers and is_usable(a, now) and a.quotas[mode].remaining > 0
            }
            lease = await store.lease(mode=mode, tiers=tiers, now=now, ttl=100_000)
            if not keys:
                assert lease is None, step
                continue
            assert lease is not None and keys[lease.account_id] == min(keys.values()), step
            held.append(lease)
        elif action < 0.85:
            lease = held.pop(rng.randrange(len(held)))
            outcome = rng.choice(
                [
                    Outcome.success(),
                    Outcome(OutcomeKind.CANCELLED, refund=True),
                    Outcome(OutcomeKind.TRANSIENT, "502"),
                    Outcome(OutcomeKind.RATE_LIMITED, "429", cooling_until=now + 4),
                ]
            )
            assert await store.release(lease, outcome, now)
        elif action < 0.95:
            account = rng.choice((await store.list(limit=100)).items)
            mode = rng.choice(["auto", "fast", "expert"])
            await store.set_quota(
                account.id, mode, replace_remaining(account.quotas[mode], rng.randrange(1, 9))
            )
        else:
            account = rng.choice((await store.list(limit=100)).items)
            status = rng.choice([AccountStatus.DISABLED, AccountStatus.ACTIVE])
            await store.set_status(account.id, status, "", now)


def replace_remaining(quota, remaining):
    return Quota(remaining, quota.total, quota.window_seconds, quota.reset_at)


async def test_upkeep_follows_the_clock_of_each_lease(store):
    """Upkeep runs only when something is due, judged by the `now` each call passes (tests move it
    freely), and whatever becomes due sooner moves the next upkeep earlier."""
    await store.add([NewAccount("a", Tier.BASIC)], NOW)
    account_id = (await store.list()).items[0].id
    crashed = await store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=1000)
    short = await store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=10)  # due sooner
    assert (await store.get(account_id)).in_flight == 2
    await store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW + 5, ttl=1000)
    assert (await store.get(account_id)).in_flight == 3
    await store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW + 10, ttl=1000)  # `short` expired
    assert (await store.get(account_id)).in_flight == 3
    assert not await store.release(short, Outcome.success(), NOW + 11)
    assert await store.release(crashed, Outcome.success(), NOW + 11)
    # A window set to end soon is refilled by the first lease after its end, whatever the mode.
    await store.set_quota(account_id, "expert", Quota(0, 8, 100, NOW + 20))
    await store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW + 19, ttl=1000)
    assert (await store.get(account_id)).quotas["expert"].remaining == 0
    await store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW + 20, ttl=1000)
    assert (await store.get(account_id)).quotas["expert"] == Quota(8, 8, 100, NOW + 120)


async def test_the_wal_starts_over_under_a_steady_load(store, tmp_path, monkeypatch):
    """Checkpoints must catch up with the loop's commits, or the log only grows."""
    import infra.sqlite_db as module

    monkeypatch.setattr(module, "CHECKPOINT_EVERY", 50)
    await store.add([NewAccount(f"w{i}", Tier.HEAVY) for i in range(8)], NOW)
    sizes = []
    for i in range(1000):
        lease = await store.lease(mode="fast", tiers=[Tier.HEAVY], now=NOW + i, ttl=60)
        await store.release(lease, Outcome.success(), NOW + i)
        if i in (199, 999):
            sizes.append((tmp_path / "pool.db-wal").stat().st_size)
    assert sizes[1] < 2 * sizes[0]  # a log that never starts over would be five times larger


V0_SCHEMA = """
CREATE TABLE accounts (
    id TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE, tier TEXT NOT NULL, status TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT '[]', in_flight INTEGER NOT NULL DEFAULT 0,
    cooling_until REAL NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL,
    last_used_at REAL NOT NULL DEFAULT 0, last_failure_at REAL NOT NULL DEFAULT 0,
    use_count INTEGER NOT NULL DEFAULT 0, fail_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX accounts_cooling ON accounts (status, cooling_until);
CREATE TABLE quotas (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE, mode TEXT NOT NULL,
    remaining INTEGER NOT NULL, total INTEGER NOT NULL, window_seconds INTEGER NOT NULL, reset_at REAL NOT NULL,
    usable INTEGER NOT NULL, tier_rank INTEGER NOT NULL, in_flight INTEGER NOT NULL DEFAULT 0,
    last_used_at REAL NOT NULL DEFAULT 0, PRIMARY KEY (account_id, mode)
);
CREATE INDEX quotas_pick ON quotas (mode, usable, tier_rank, remaining DESC, in_flight, last_used_at);
CREATE INDEX quotas_reset ON quotas (mode, reset_at);
CREATE TABLE leases (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, mode TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX leases_expiry ON leases (expires_at);
"""  # as the store wrote it before `PRAGMA user_version` (the refresh table came later)


async def test_a_file_from_before_versioning_is_migrated(tmp_path):
    import sqlite3

    from core.accounts import Lease, account_id_for

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute("PRAGMA journal_mode=WAL")
    old.executescript(V0_SCHEMA)
    a, b = account_id_for("old-a"), account_id_for("old-b")
    old.execute(
        "INSERT INTO accounts (id, token, tier, status, in_flight, created_at, last_used_at, use_count) "
        "VALUES (?, 'old-a', 'basic', 'active', 2, ?, ?, 5), (?, 'old-b', 'basic', 'disabled', 0, ?, 0, 0)",
        (a, NOW, NOW + 1, b, NOW),
    )
    for account_id, usable, in_flight, last_used in ((a, 1, 2, NOW + 1), (b, 0, 0, 0)):
        old.executemany(
            "INSERT INTO quotas VALUES (?,?,?,?,?,?,?,0,?,?)",
            [
                (account_id, mode, 7, 8, 3600, NOW + 3600, usable, in_flight, last_used)
                for mode in ("fast", "expert")
            ],
        )
    held, stale = "lease_" + "1" * 32, "lease_" + "2" * 32
    old.executemany(
        "INSERT INTO leases VALUES (?,?,?,?)", [(held, a, "fast", NOW + 600), (stale, a, "fast", NOW + 30)]
    )
    old.commit()
    old.close()

    store = SQLiteAccountStore(path)
    try:
        account = await store.get(a)
        assert (
            account.in_flight == 2
            and account.use_count == 5
            and account.quotas["fast"] == Quota(7, 8, 3600, NOW + 3600)
        )
        assert (await store.get(b)).status is AccountStatus.DISABLED
        # The stale lease is reclaimed when due; the held one still releases once.
        lease = await store.lease(mode="expert", tiers=[Tier.BASIC], now=NOW + 31, ttl=60)
        assert lease.account_id == a
        assert (await store.get(a)).in_flight == 2
        old_lease = Lease(held, a, "old-a", Tier.BASIC, "fast", NOW + 600)
        assert await store.release(old_lease, Outcome.success(), NOW + 32)
        assert not await store.release(old_lease, Outcome.success(), NOW + 33)
        assert not await store.release(
            Lease(stale, a, "old-a", Tier.BASIC, "fast", NOW + 30), Outcome.success(), NOW
        )
        assert (await store.get(a)).in_flight == 1 and (await store.get(a)).use_count == 6
    finally:
        await store.aclose()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        names = {n for (n,) in db.execute("SELECT name FROM sqlite_master")}
        assert "leases" not in names and {"upkeep", "refresh", "quotas_pick", "quotas_rank_copies"} <= names
        assert db.execute("SELECT COUNT(*) FROM refresh").fetchone()[0] == 2
    finally:
        db.close()
    again = SQLiteAccountStore(path)  # a migrated file opens as it is
    try:
        assert (await again.get(a)).in_flight == 1
    finally:
        await again.aclose()


async def test_a_version_1_file_gains_the_tier_source(tmp_path):
    path = tmp_path / "v1.db"
    store = SQLiteAccountStore(path)
    await store.add([NewAccount("v1-a", Tier.SUPER)], NOW)
    await store.aclose()
    db = sqlite3.connect(path)  # make it the file version 1 wrote: no tier_source column
    db.execute("ALTER TABLE accounts DROP COLUMN tier_source")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    again = SQLiteAccountStore(path)
    try:
        account = (await again.list()).items[0]
        assert account.tier is Tier.SUPER and account.tier_source.value == "assumed"
    finally:
        await again.aclose()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    finally:
        db.close()


async def test_a_clock_that_steps_back_keeps_the_least_recently_used_first(store):
    a, b = "back-a", "back-b"
    await store.add([NewAccount(a), NewAccount(b)], NOW)
    by_token = {acc.token: acc.id for acc in (await store.list()).items}

    async def lease_only(token, mode, now):
        other = b if token == a else a
        await store.set_quota(by_token[token], mode, Quota(8, 8, 3600, NOW + 3600))
        await store.set_quota(by_token[other], mode, Quota(3, 8, 3600, NOW + 3600))
        lease = await store.lease(mode=mode, tiers=[Tier.BASIC], now=now, ttl=60)
        assert lease.token == token
        await store.release(lease, Outcome.success(), now)

    await lease_only(a, "expert", NOW + 200)
    await lease_only(b, "expert", NOW + 100)  # the clock went back
    await lease_only(a, "fast", NOW + 50)  # and again: `a` was last used before `b` now
    for token in (a, b):
        await store.set_quota(by_token[token], "expert", Quota(5, 8, 3600, NOW + 3600))
    lease = await store.lease(mode="expert", tiers=[Tier.BASIC], now=NOW + 300, ttl=60)
    assert lease.token == a


async def test_release_nowait_releases_on_the_spot_or_says_it_cannot(store, tmp_path):
    import sqlite3

    await store.add([NewAccount("a", Tier.BASIC)], NOW)
    first = await store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=60)
    second = await store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=60)
    assert store.release_nowait(first, Outcome.success(), NOW + 1) is True
    assert store.release_nowait(first, Outcome.success(), NOW + 2) is False  # once only
    assert (await store.get(first.account_id)).in_flight == 1

    # Another connection (another process) holds the write lock: no waiting, no change.
    blocker = sqlite3.connect(tmp_path / "pool.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        assert store.release_nowait(second, Outcome.success(), NOW + 3) is None
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    account = await store.get(second.account_id)
    assert account.in_flight == 1 and account.use_count == 1
    assert await store.release(second, Outcome.success(), NOW + 4)  # the waiting way still works
    assert (await store.get(second.account_id)).in_flight == 0
