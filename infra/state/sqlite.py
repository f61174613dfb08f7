"""The embedded account store: one SQLite file, every change in one IMMEDIATE transaction.

SQLite serialises writers across processes, so a lease (upkeep if due, choose, reserve, record)
is atomic even when several local processes share the file. Selection is index-driven: each quota
row carries what ranking needs (tier, usability, and lower bounds of the account's in-flight count
and last use), so a lease reads a handful of index entries whatever the size of the pool and
writes one quota row, not one per mode. Leases live on their account's row, so recording or
releasing one is part of the account's own update; a SUCCESS or CANCELLED release is one UPDATE.
Layout and migrations: `infra/state/sqlite_schema.py`; the statements: `sqlite_statements.py`;
the connections (a transaction runs on the event loop when the write lock is free, else on a
worker thread): `infra/sqlite_db.py`.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from core.accounts import (
    Account,
    AccountStatus,
    AccountUpdate,
    ImportReport,
    Lease,
    NewAccount,
    Outcome,
    Quota,
    TierSource,
    ascii_lower,
)
from core.catalog import TIER_ORDER, Tier
from core.ports import AccountPage
from core.selection.policy import Candidate, apply_outcome, choose, rank_key
from infra.sqlite_db import SQLiteFile, transaction
from infra.state import sqlite_statements as sql
from infra.state.sqlite_schema import LEASE_ID_LENGTH, lease_entries, lease_entry, migrate

T = TypeVar("T")

PICK_WINDOW = 8  # equally ranked candidates gathered per lease; one is drawn at random
PAGE_SIZE = 1024  # for a new file: a commit writes a few pages, smaller ones cost less
INF = float("inf")

# Lease ids need only be unique: a per-process generator, reseeded in a forked child.
_LEASE_IDS = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_LEASE_IDS.seed)


class SQLiteAccountStore:
    """`AccountStore` on an SQLite file (the embedded default)."""

    def __init__(self, path: str | Path, *, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._file = SQLiteFile(
            path,
            name="account store",
            thread="sqlite-store",
            prepare=lambda db: transaction(db, migrate),
            foreign_keys=True,
            page_size=PAGE_SIZE,
            inline=True,
        )
        self.path = self._file.path

    @classmethod
    def from_url(cls, url: str) -> SQLiteAccountStore:
        """`sqlite:///relative/path` or `sqlite:////absolute/path`."""
        return cls(url.removeprefix("sqlite:///"))

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._file.run(fn)

    # -- reading --------------------------------------------------------------------------

    @staticmethod
    def _account(db: sqlite3.Connection, row: tuple[Any, ...]) -> Account:
        quotas = {
            mode: Quota(remaining, total, window, reset_at)
            for mode, remaining, total, window, reset_at in db.execute(sql.SELECT_QUOTAS, (row[0],))
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
            tier_source=TierSource(row[14]),
        )

    def _load(self, db: sqlite3.Connection, account_id: str) -> Account | None:
        row = db.execute(sql.SELECT_ACCOUNT, (account_id,)).fetchone()
        return self._account(db, row) if row else None

    # -- writing --------------------------------------------------------------------------

    @staticmethod
    def _save(db: sqlite3.Connection, before: Account, after: Account) -> None:
        """Write what changed from `before` to `after`: the account's changed fields, the quota rows
        whose numbers changed (new ones with exact ranking copies), and earlier upkeep if due sooner.
        The trigger `quotas_rank_copies` keeps the other rows' copies in step."""
        changed = [name for name in sql.SAVED_FIELDS if getattr(before, name) != getattr(after, name)]
        if changed:
            values = {name: getattr(after, name) for name in changed}
            if "tags" in values:
                values["tags"] = json.dumps(list(after.tags))
            for name in ("status", "tier", "tier_source"):
                if name in values:
                    values[name] = values[name].value
            db.execute(sql.update_account(changed), (*values.values(), after.id))
            if "tier" in values:  # the trigger keeps the other copies; the tier's is kept here
                db.execute(sql.UPDATE_TIER_RANK, (after.tier.rank, after.id))
        usable = int(after.status is AccountStatus.ACTIVE)
        reset_due = INF
        for mode, q in after.quotas.items():
            if before.quotas.get(mode) == q:
                continue
            reset_due = min(reset_due, q.reset_at)
            db.execute(
                sql.UPSERT_QUOTA,
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
        cooling_due = after.cooling_until if after.status is AccountStatus.COOLING else INF
        if cooling_due < INF or reset_due < INF:
            db.execute(sql.EARLIER_UPKEEP, (cooling_due, reset_due, cooling_due, reset_due))

    @staticmethod
    def _sweep(db: sqlite3.Connection, now: float, due: tuple[float, float, float]) -> None:
        """Upkeep of the kinds whose time has come (expired leases, ended cooling, ended windows of
        every mode), then the next time each is due."""
        leases_due, cooling_due, reset_due = due
        if leases_due <= now:
            leases_due = INF
            for account_id, text in db.execute(sql.HELD_LEASES).fetchall():
                entries = lease_entries(text)
                kept = [(lease_id, expires_at) for lease_id, expires_at in entries if expires_at > now]
                if len(kept) < len(entries):
                    db.execute(
                        sql.DROP_LEASES,
                        ("".join(lease_entry(*e) for e in kept), len(entries) - len(kept), account_id),
                    )
                leases_due = min([leases_due, *(expires_at for _, expires_at in kept)])
        if cooling_due <= now:
            db.execute(sql.END_COOLING, (now,))
            (cooling_due,) = db.execute(sql.NEXT_COOLING).fetchone()
        if reset_due <= now:
            db.execute(sql.REFILL_QUOTAS, (now, now))
            (reset_due,) = db.execute(sql.NEXT_RESET).fetchone()
        db.execute(
            sql.SET_UPKEEP,
            (
                leases_due,
                INF if cooling_due is None else cooling_due,
                INF if reset_due is None else reset_due,
            ),
        )

    def _pick(
        self, db: sqlite3.Connection, mode: str, ranks: Sequence[int], now: float
    ) -> tuple[Candidate | None, str, list[str], float] | None:
        """The candidate `choose` takes, its token, the ids of rows read past whose copies were
        stale, and when leases are next due; None if upkeep may be due at `now` (or no row came).

        Rows come in index order of their copies, which are lower bounds of the exact figures
        (`rank_key` only grows with in-flight count and last use): once a row's bound ranks after
        the best exact candidate seen (or ties it with the window full), no later row can beat it.
        """
        cursor = db.execute(sql.pick_sql(len(ranks)), (mode, *ranks))
        try:
            first = cursor.fetchone()
            if first is None or min(first[8], first[9]) <= now:
                return None
            seen: list[Candidate] = []
            tokens: dict[str, str] = {}
            stale: list[str] = []
            best: tuple[int, int, int, float] | None = None
            ties = 0
            for row in itertools.chain((first,), cursor):
                (
                    account_id,
                    rank,
                    remaining,
                    in_flight,
                    last_used_at,
                    true_in_flight,
                    true_last_used,
                    token,
                ) = row[:8]
                tier = TIER_ORDER[rank]
                candidate = Candidate(account_id, tier, remaining, true_in_flight, true_last_used)
                key = bound = rank_key(candidate)
                exact = in_flight == true_in_flight and last_used_at == true_last_used
                if not exact:
                    bound = rank_key(Candidate(account_id, tier, remaining, in_flight, last_used_at))
                if best is not None and (bound > best or (bound == best and ties >= PICK_WINDOW)):
                    break
                if not exact:
                    stale.append(account_id)
                seen.append(candidate)
                tokens[account_id] = token
                if best is None or key < best:
                    best, ties = key, 1
                elif key == best:
                    ties += 1
        finally:
            cursor.close()
        pick = choose(seen, self._rng)
        return pick, tokens[pick.account_id] if pick else "", stale, first[8]

    # -- the port -------------------------------------------------------------------------

    async def add(self, accounts: Sequence[NewAccount], now: float) -> ImportReport:
        def add(db: sqlite3.Connection) -> ImportReport:
            added = skipped = 0
            for new in accounts:
                account_id = new.id
                cursor = db.execute(
                    sql.INSERT_ACCOUNT,
                    (
                        account_id,
                        new.token,
                        new.tier.value,
                        "active",
                        new.note,
                        json.dumps(list(new.tags)),
                        now,
                        new.tier_source.value,
                    ),
                )
                if cursor.rowcount == 0:
                    skipped += 1
                    continue
                added += 1
                db.execute(sql.INSERT_REFRESH, (account_id,))
                account = new.account(now)
                self._save(db, replace(account, quotas={}), account)
            return ImportReport(added=added, skipped=skipped, invalid=0)

        return await self._run(add)

    async def get(self, account_id: str) -> Account | None:
        return await self._run(lambda db: self._load(db, account_id))

    async def list(
        self,
        *,
        status: AccountStatus | None = None,
        tier: Tier | None = None,
        tag: str | None = None,
        text: str | None = None,
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
            if tag:  # `tags` is a JSON list: the tag as a JSON string, quotes included, is one element
                clauses.append("instr(tags, ?) > 0")
                args.append(json.dumps(tag))
            if text:
                clauses.append(
                    "(instr(lower(id), ?) > 0 OR instr(lower(note), ?) > 0 OR instr(lower(tags), ?) > 0)"
                )
                args += [ascii_lower(text)] * 3
            rows = db.execute(sql.list_accounts(clauses), (*args, limit + 1)).fetchall()
            items = [self._account(db, row) for row in rows[:limit]]
            return AccountPage(items, items[-1].id if len(rows) > limit else None)

        return await self._run(page)

    async def remove(self, account_id: str) -> bool:
        # Its quota rows and refresh row go with it (foreign keys), its leases with its row.
        return await self._run(lambda db: db.execute(sql.DELETE_ACCOUNT, (account_id,)).rowcount > 0)

    async def set_status(self, account_id: str, status: AccountStatus, reason: str, now: float) -> bool:
        def update(db: sqlite3.Connection) -> bool:
            account = self._load(db, account_id)
            if account is None:
                return False
            self._save(db, account, replace(account, status=status, reason=reason, cooling_until=0.0))
            return True

        return await self._run(update)

    async def set_quota(self, account_id: str, mode: str, quota: Quota) -> bool:
        def update(db: sqlite3.Connection) -> bool:
            account = self._load(db, account_id)
            if account is None:
                return False
            self._save(db, account, replace(account, quotas={**account.quotas, mode: quota}))
            return True

        return await self._run(update)

    async def update(self, account_id: str, change: AccountUpdate) -> bool:
        def update(db: sqlite3.Connection) -> bool:
            account = self._load(db, account_id)
            if account is None:
                return False
            self._save(db, account, change.apply(account))
            return True

        return await self._run(update)

    async def lease(self, *, mode: str, tiers: Sequence[Tier], now: float, ttl: float) -> Lease | None:
        ranks = sorted({tier.rank for tier in tiers})
        if not ranks:
            return None

        def lease(db: sqlite3.Connection) -> Lease | None:
            found = self._pick(db, mode, ranks, now)
            if found is None:
                due = db.execute(sql.UPKEEP_SQL).fetchone()
                if min(due) > now:
                    return None  # no candidate
                self._sweep(db, now, due)
                found = self._pick(db, mode, ranks, -INF)
                if found is None:
                    return None
            pick, token, stale, leases_due = found
            if pick is None:
                return None
            lease = Lease(
                id=f"lease_{_LEASE_IDS.getrandbits(128):032x}",
                account_id=pick.account_id,
                token=token,
                tier=pick.tier,
                mode=mode,
                expires_at=now + ttl,
            )
            db.execute(sql.TAKE_ACCOUNT, (now, lease_entry(lease.id, lease.expires_at), pick.account_id))
            db.execute(sql.TAKE_QUOTA, (pick.in_flight, now, pick.account_id, mode))
            stale = [account_id for account_id in stale if account_id != pick.account_id]
            if stale:  # rows read past because their copies were behind: bring them up to date
                db.execute(sql.refresh_copies(len(stale)), (mode, *stale))
            if lease.expires_at < leases_due:
                db.execute(sql.SET_LEASES_DUE, (lease.expires_at,))
            return lease

        return await self._run(lease)

    async def release(self, lease: Lease, outcome: Outcome, now: float) -> bool:
        return await self._run(self._release(lease, outcome, now))

    def release_nowait(self, lease: Lease, outcome: Outcome, now: float) -> bool | None:
        """`release`, done on the calling thread if it can be right now (the write lock is free);
        None if it would have to wait: then call `release`. Lets a caller skip the task it
        would otherwise start to see a release through its own cancellation."""
        done, result = self._file.try_now(self._release(lease, outcome, now))
        return result if done else None

    def _release(self, lease: Lease, outcome: Outcome, now: float) -> Callable[[sqlite3.Connection], bool]:
        if len(lease.id) != LEASE_ID_LENGTH or not lease.id.startswith("lease_"):
            return lambda db: False  # not a lease of this store
        held = {"account": lease.account_id, "lease": lease.id}
        fast = sql.RELEASE_SQL.get(outcome.kind) if outcome.quota is None else None

        def release(db: sqlite3.Connection) -> bool:
            if fast is not None:
                if not any(db.execute(statement, held).rowcount for statement in fast):
                    return False  # released already, reclaimed after expiry, or the account removed
                if outcome.refund:
                    db.execute(sql.REFUND_SQL, (lease.account_id, lease.mode))
                return True
            if db.execute(sql.RELEASE_ONLY_SQL, held).rowcount == 0:
                return False
            account = self._load(db, lease.account_id)
            if account is None:
                return False
            self._save(db, account, apply_outcome(account, lease.mode, outcome, now))
            return True

        return release

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    # -- quota upkeep (core.ports.QuotaRefreshStore) --------------------------------------

    async def due_for_refresh(self, *, now: float, limit: int) -> list[Account]:
        def due(db: sqlite3.Connection) -> list[Account]:
            ids = db.execute(sql.DUE_FOR_REFRESH, (now, limit)).fetchall()
            return [a for (account_id,) in ids if (a := self._load(db, account_id)) is not None]

        return await self._run(due)

    async def claim_refresh(
        self, account_id: str, *, now: float, next_at: float, min_interval: float
    ) -> bool:
        def claim(db: sqlite3.Connection) -> bool:
            cursor = db.execute(sql.CLAIM_REFRESH, (now, next_at, account_id, now, min_interval))
            return cursor.rowcount > 0

        return await self._run(claim)

    async def aclose(self) -> None:
        await self._file.aclose()
