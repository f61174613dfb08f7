"""The embedded account store: one SQLite file, every change in one IMMEDIATE transaction.

SQLite serialises writers across processes, so a lease (sweep, choose, reserve, record) is
atomic even when several local processes share the file. Selection is index-driven: each
quota row carries a copy of what ranking needs (tier, usability, in-flight, last use), so a
lease reads a handful of rows whatever the size of the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from core.accounts import (
    Account,
    AccountStatus,
    ImportReport,
    Lease,
    NewAccount,
    Outcome,
    Quota,
    account_id_for,
    default_quotas,
)
from core.catalog import TIER_ORDER, Tier
from core.errors import StoreUnavailable
from core.ports import AccountPage
from core.selection.policy import Candidate, apply_outcome, choose
from infra.sqlite_db import open_db, transaction

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    tier TEXT NOT NULL,
    status TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]',
    in_flight INTEGER NOT NULL DEFAULT 0,
    cooling_until REAL NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    last_used_at REAL NOT NULL DEFAULT 0,
    last_failure_at REAL NOT NULL DEFAULT 0,
    use_count INTEGER NOT NULL DEFAULT 0,
    fail_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS accounts_cooling ON accounts (status, cooling_until);
CREATE TABLE IF NOT EXISTS quotas (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    mode TEXT NOT NULL,
    remaining INTEGER NOT NULL,
    total INTEGER NOT NULL,
    window_seconds INTEGER NOT NULL,
    reset_at REAL NOT NULL,
    -- copies of account fields, kept in step, so one index serves selection
    usable INTEGER NOT NULL,
    tier_rank INTEGER NOT NULL,
    in_flight INTEGER NOT NULL DEFAULT 0,
    last_used_at REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, mode)
);
CREATE INDEX IF NOT EXISTS quotas_pick
    ON quotas (mode, usable, tier_rank, remaining DESC, in_flight, last_used_at);
CREATE INDEX IF NOT EXISTS quotas_reset ON quotas (mode, reset_at);
CREATE TABLE IF NOT EXISTS leases (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_expiry ON leases (expires_at);
CREATE TABLE IF NOT EXISTS refresh (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    refresh_at REAL NOT NULL DEFAULT 0,
    refreshed_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refresh_due ON refresh (refresh_at);
INSERT OR IGNORE INTO refresh (account_id) SELECT id FROM accounts;
"""

ACCOUNT_COLUMNS = (
    "id, token, tier, status, note, tags, in_flight, cooling_until, reason, created_at, "
    "last_used_at, last_failure_at, use_count, fail_count"
)
PICK_SQL = (
    "SELECT account_id, tier_rank, remaining, in_flight, last_used_at FROM quotas "
    "WHERE mode=? AND usable=1 AND tier_rank IN ({marks}) AND remaining > 0 "
    "ORDER BY tier_rank, remaining DESC, in_flight, last_used_at LIMIT ?"
)
PICK_WINDOW = 8  # rows read per lease; ties among them are broken at random
CHECKPOINT_EVERY = 1000  # inline commits between two WAL checkpoints on the executor


class SQLiteAccountStore:
    """`AccountStore` on an SQLite file (the embedded default)."""

    def __init__(self, path: str | Path, *, rng: random.Random | None = None) -> None:
        self.path = str(path)
        self._rng = rng or random.Random()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._db: sqlite3.Connection | None = None
        # The loop's own connection: no busy wait, no autocheckpoint (see `_run`).
        self._fast: sqlite3.Connection | None = None
        self._fast_lock = threading.Lock()
        self._inline = self.path != ":memory:"  # a second :memory: connection is another database
        self._ready = False  # the schema exists (created by the executor's connection)
        self._commits = 0
        self._checkpointing = False  # a checkpoint is queued on the executor: don't run inline

    @classmethod
    def from_url(cls, url: str) -> SQLiteAccountStore:
        """`sqlite:///relative/path` or `sqlite:////absolute/path`."""
        return cls(url.removeprefix("sqlite:///"))

    # -- plumbing -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = open_db(self.path, SCHEMA, foreign_keys=True)
        return self._db

    _transaction = staticmethod(transaction)

    def _fast_db(self) -> sqlite3.Connection:
        if self._fast is None:
            db = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA synchronous=NORMAL")  # per connection, as the executor's
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints (fsync) run on the executor
            self._fast = db
        return self._fast

    def _try_inline(self, fn: Callable[[sqlite3.Connection], T]) -> tuple[bool, T | None]:
        """Run the transaction on the calling thread if the write lock is free right now.

        A lease or release is a few index lookups and updates (~0.1 ms): cheaper than the
        thread hop and the GIL hand-offs of the executor. With any wait (another process or
        the executor's connection holds the lock) it rolls back and says so: the caller then
        queues it on the executor, which waits with the usual busy timeout. Same transaction,
        same semantics; only where it runs differs.
        """
        if not self._fast_lock.acquire(blocking=False):
            return False, None  # another thread is using the loop's connection
        try:
            db = self._fast_db()
            try:
                result = self._transaction(db, fn)
            except sqlite3.OperationalError as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if "locked" in str(exc) or "busy" in str(exc):
                    return False, None
                raise
        finally:
            self._fast_lock.release()
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0:
            self._checkpointing = True
            self._executor.submit(self._checkpoint)
        return True, result

    def _checkpoint(self) -> None:
        """Copy the WAL into the database and have the next writer start it over.

        Meanwhile this process's operations queue behind it on the executor: a checkpoint that
        races the loop's commits never finds the log fully copied, and the log then only grows
        (each commit appending pages instead of overwriting them, which costs more).
        """
        try:
            with contextlib.suppress(sqlite3.Error):
                self._connect().execute("PRAGMA wal_checkpoint(RESTART)")
        finally:
            self._checkpointing = False

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            if self._ready and not self._checkpointing:
                done, result = self._try_inline(fn)
                if done:
                    return result  # type: ignore[return-value]

            def call() -> T:
                return self._transaction(self._connect(), fn)

            result = await asyncio.get_running_loop().run_in_executor(self._executor, call)
            self._ready = self._inline
            return result
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"The account store is unavailable ({type(exc).__name__}).") from exc

    # -- reading --------------------------------------------------------------------------

    @staticmethod
    def _account(db: sqlite3.Connection, row: tuple[Any, ...]) -> Account:
        quotas = {
            mode: Quota(remaining, total, window, reset_at)
            for mode, remaining, total, window, reset_at in db.execute(
                "SELECT mode, remaining, total, window_seconds, reset_at FROM quotas WHERE account_id=?",
                (row[0],),
            )
        }
        return Account(
            id=row[0],
            token=row[1],
            tier=Tier(row[2]),
            status=AccountStatus(row[3]),
            note=row[4],
            tags=tuple(json.loads(row[5])),
            quotas=quotas,
            in_flight=row[6],
            cooling_until=row[7],
            reason=row[8],
            created_at=row[9],
            last_used_at=row[10],
            last_failure_at=row[11],
            use_count=row[12],
            fail_count=row[13],
        )

    def _load(self, db: sqlite3.Connection, account_id: str) -> Account | None:
        row = db.execute(
            f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id=?",  # noqa: S608 - constant columns
            (account_id,),
        ).fetchone()
        return self._account(db, row) if row else None

    # -- writing --------------------------------------------------------------------------

    @staticmethod
    def _save(db: sqlite3.Connection, account: Account, now: float) -> None:
        """Write an account and its quota rows, keeping the ranking copies in step."""
        db.execute(
            "UPDATE accounts SET status=?, note=?, tags=?, in_flight=?, cooling_until=?, reason=?, "
            "last_used_at=?, last_failure_at=?, use_count=?, fail_count=? WHERE id=?",
            (
                account.status.value,
                account.note,
                json.dumps(list(account.tags)),
                account.in_flight,
                account.cooling_until,
                account.reason,
                account.last_used_at,
                account.last_failure_at,
                account.use_count,
                account.fail_count,
                account.id,
            ),
        )
        usable = int(account.status is AccountStatus.ACTIVE)
        for mode, q in account.quotas.items():
            db.execute(
                "INSERT INTO quotas (account_id, mode, remaining, total, window_seconds, reset_at, usable, "
                "tier_rank, in_flight, last_used_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(account_id, mode) DO UPDATE SET remaining=excluded.remaining, "
                "total=excluded.total, window_seconds=excluded.window_seconds, reset_at=excluded.reset_at, "
                "usable=excluded.usable, in_flight=excluded.in_flight, last_used_at=excluded.last_used_at",
                (
                    account.id,
                    mode,
                    q.remaining,
                    q.total,
                    q.window_seconds,
                    q.reset_at,
                    usable,
                    account.tier.rank,
                    account.in_flight,
                    account.last_used_at,
                ),
            )

    @staticmethod
    def _save_changes(db: sqlite3.Connection, before: Account, after: Account) -> None:
        """What `_save(after)` writes, in fewer statements and pages: the ranking copies of every
        quota row in one UPDATE, and only the quota rows whose numbers changed (a release touches
        one mode at most), so the rows and index entries of the others stay as they are."""
        db.execute(
            "UPDATE accounts SET status=?, note=?, tags=?, in_flight=?, cooling_until=?, reason=?, "
            "last_used_at=?, last_failure_at=?, use_count=?, fail_count=? WHERE id=?",
            (
                after.status.value,
                after.note,
                json.dumps(list(after.tags)),
                after.in_flight,
                after.cooling_until,
                after.reason,
                after.last_used_at,
                after.last_failure_at,
                after.use_count,
                after.fail_count,
                after.id,
            ),
        )
        usable = int(after.status is AccountStatus.ACTIVE)
        db.execute(
            "UPDATE quotas SET usable=?, in_flight=?, last_used_at=? WHERE account_id=?",
            (usable, after.in_flight, after.last_used_at, after.id),
        )
        for mode, q in after.quotas.items():
            if before.quotas.get(mode) != q:
                db.execute(
                    "INSERT INTO quotas (account_id, mode, remaining, total, window_seconds, reset_at, "
                    "usable, tier_rank, in_flight, last_used_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(account_id, mode) DO UPDATE SET remaining=excluded.remaining, "
                    "total=excluded.total, window_seconds=excluded.window_seconds, "
                    "reset_at=excluded.reset_at",
                    (
                        after.id,
                        mode,
                        q.remaining,
                        q.total,
                        q.window_seconds,
                        q.reset_at,
                        usable,
                        after.tier.rank,
                        after.in_flight,
                        after.last_used_at,
                    ),
                )

    def _sweep(self, db: sqlite3.Connection, mode: str, now: float) -> None:
        """Amortised upkeep, each step bounded by what is due: expired leases, ended cooling, ended windows."""
        for lease_id, account_id in db.execute(
            "SELECT id, account_id FROM leases WHERE expires_at <= ?", (now,)
        ).fetchall():
            db.execute("DELETE FROM leases WHERE id=?", (lease_id,))
            db.execute("UPDATE accounts SET in_flight=MAX(0, in_flight-1) WHERE id=?", (account_id,))
            db.execute("UPDATE quotas SET in_flight=MAX(0, in_flight-1) WHERE account_id=?", (account_id,))
        cooled = db.execute(
            "SELECT id FROM accounts WHERE status='cooling' AND cooling_until <= ?", (now,)
        ).fetchall()
        for (account_id,) in cooled:
            db.execute("UPDATE accounts SET status='active', cooling_until=0 WHERE id=?", (account_id,))
            db.execute("UPDATE quotas SET usable=1 WHERE account_id=?", (account_id,))
        db.execute(
            "UPDATE quotas SET remaining=total, reset_at=? + window_seconds WHERE mode=? AND reset_at <= ?",
            (now, mode, now),
        )

    # -- the port -------------------------------------------------------------------------

    async def add(self, accounts: Sequence[NewAccount], now: float) -> ImportReport:
        def add(db: sqlite3.Connection) -> ImportReport:
            added = skipped = 0
            for new in accounts:
                account_id = account_id_for(new.token)
                cursor = db.execute(
                    "INSERT OR IGNORE INTO accounts (id, token, tier, status, note, tags, created_at) "
                    "VALUES (?,?,?,?,?,?,?)",
                    (
                        account_id,
                        new.token,
                        new.tier.value,
                        "active",
                        new.note,
                        json.dumps(list(new.tags)),
                        now,
                    ),
                )
                if cursor.rowcount == 0:
                    skipped += 1
                    continue
                added += 1
                db.execute("INSERT OR IGNORE INTO refresh (account_id) VALUES (?)", (account_id,))
                account = Account(
                    id=account_id,
                    token=new.token,
                    tier=new.tier,
                    note=new.note,
                    tags=new.tags,
                    quotas=default_quotas(new.tier, now),
                    created_at=now,
                )
                self._save(db, account, now)
            return ImportReport(added=added, skipped=skipped, invalid=0)

        return await self._run(add)

    async def get(self, account_id: str) -> Account | None:
        return await self._run(lambda db: self._load(db, account_id))

    async def list(
        self,
        *,
        status: AccountStatus | None = None,
        tier: Tier | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> AccountPage:
        def page(db: sqlite3.Connection) -> AccountPage:
            clauses, args = ["id > ?"], [cursor or ""]
            if status is not None:
                clauses.append("status = ?")
                args.append(status.value)
            if tier is not None:
                clauses.append("tier = ?")
                args.append(tier.value)
            rows = db.execute(
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?",  # noqa: S608
                (*args, limit + 1),
            ).fetchall()
            items = [self._account(db, row) for row in rows[:limit]]
            return AccountPage(items, items[-1].id if len(rows) > limit else None)

        return await self._run(page)

    async def remove(self, account_id: str) -> bool:
        def remove(db: sqlite3.Connection) -> bool:
            db.execute("DELETE FROM leases WHERE account_id=?", (account_id,))
            return db.execute("DELETE FROM accounts WHERE id=?", (account_id,)).rowcount > 0

        return await self._run(remove)

    async def set_status(self, account_id: str, status: AccountStatus, reason: str, now: float) -> bool:
        def update(db: sqlite3.Connection) -> bool:
            account = self._load(db, account_id)
            if account is None:
                return False
            self._save(db, replace(account, status=status, reason=reason, cooling_until=0.0), now)
            return True

        return await self._run(update)

    async def set_quota(self, account_id: str, mode: str, quota: Quota) -> bool:
        def update(db: sqlite3.Connection) -> bool:
            account = self._load(db, account_id)
            if account is None:
                return False
            self._save(db, replace(account, quotas={**account.quotas, mode: quota}), 0.0)
            return True

        return await self._run(update)

    async def lease(self, *, mode: str, tiers: Sequence[Tier], now: float, ttl: float) -> Lease | None:
        ranks = sorted({tier.rank for tier in tiers})
        if not ranks:
            return None

        def lease(db: sqlite3.Connection) -> Lease | None:
            self._sweep(db, mode, now)
            marks = ",".join("?" * len(ranks))
            rows = db.execute(PICK_SQL.format(marks=marks), (mode, *ranks, PICK_WINDOW)).fetchall()
            pick = choose([Candidate(r[0], TIER_ORDER[r[1]], r[2], r[3], r[4]) for r in rows], self._rng)
            if pick is None:
                return None
            lease = Lease(
                id="lease_" + uuid.uuid4().hex,
                account_id=pick.account_id,
                token=db.execute("SELECT token FROM accounts WHERE id=?", (pick.account_id,)).fetchone()[0],
                tier=pick.tier,
                mode=mode,
                expires_at=now + ttl,
            )
            db.execute(
                "UPDATE accounts SET in_flight=in_flight+1, last_used_at=? WHERE id=?", (now, pick.account_id)
            )
            db.execute(  # the ranking copies on every row of the account; one unit of `mode`
                "UPDATE quotas SET in_flight=in_flight+1, last_used_at=?, remaining=remaining-(mode=?) "
                "WHERE account_id=?",
                (now, mode, pick.account_id),
            )
            db.execute(
                "INSERT INTO leases (id, account_id, mode, expires_at) VALUES (?,?,?,?)",
                (lease.id, lease.account_id, mode, lease.expires_at),
            )
            return lease

        return await self._run(lease)

    async def release(self, lease: Lease, outcome: Outcome, now: float) -> bool:
        def release(db: sqlite3.Connection) -> bool:
            if db.execute("DELETE FROM leases WHERE id=?", (lease.id,)).rowcount == 0:
                return False  # released already, or reclaimed after expiry
            account = self._load(db, lease.account_id)
            if account is None:
                return False
            self._save_changes(db, account, apply_outcome(account, lease.mode, outcome, now))
            return True

        return await self._run(release)

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    # -- quota upkeep (core.ports.QuotaRefreshStore) --------------------------------------

    async def due_for_refresh(self, *, now: float, limit: int) -> list[Account]:
        def due(db: sqlite3.Connection) -> list[Account]:
            ids = db.execute(
                "SELECT account_id FROM refresh WHERE refresh_at <= ? ORDER BY refresh_at LIMIT ?",
                (now, limit),
            ).fetchall()
            return [a for (account_id,) in ids if (a := self._load(db, account_id)) is not None]

        return await self._run(due)

    async def claim_refresh(
        self, account_id: str, *, now: float, next_at: float, min_interval: float
    ) -> bool:
        def claim(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE refresh SET refreshed_at=?, refresh_at=? WHERE account_id=? AND ? - refreshed_at >= ?",
                (now, next_at, account_id, now, min_interval),
            )
            return cursor.rowcount > 0

        return await self._run(claim)

    async def close(self) -> None:
        self._ready = False
        with self._fast_lock:
            if self._fast is not None:
                self._fast.close()
                self._fast = None

        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=False)
