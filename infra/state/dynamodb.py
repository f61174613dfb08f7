"""The account store on DynamoDB: one item per account, optimistic conditional writes.

An account is one item, so every change to it (a lease, a release, an operator action) is one
`PutItem` conditioned on the version the writer read (`ver = :v`): a lost race is a
`ConditionalCheckFailedException`, answered with the fresh item (`ReturnValuesOnConditionCheckFailure`)
and decided again. The pure policy of `core.selection.policy` computes each new state (upkeep,
the choice, the reservation, the outcome). Leases live inside the item (`leases`), so a lease is
atomic with the unit it reserves and the in-flight count.

The item and its indexes: `infra/state/dynamodb_codec.py`. A lease reads the top few of one
index partition per tier, then writes the chosen item. The client and its thread pool:
`infra/dynamodb_table.py`.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Unpack

from core.accounts import (
    Account,
    AccountStatus,
    AccountUpdate,
    ImportReport,
    Lease,
    NewAccount,
    Outcome,
    Quota,
    matches,
)
from core.catalog import Tier
from core.errors import StoreUnavailable
from core.ports import AccountPage
from core.selection.policy import apply_outcome, candidate, choose, reserve, upkeep
from infra.dynamodb_table import Conflict, DynamoDBTable, TableAccess, location, number
from infra.state.dynamodb_codec import (
    ALL,
    DUE,
    MODES,
    TIME_TO_LIVE,
    AccountItem,
    from_item,
    table_definition,
    to_item,
)

PICK_WINDOW = 8
SWEEP_LIMIT = 50
SWEEP_EVERY = 1.0  # seconds of store time between two upkeep queries from one process
MAX_ATTEMPTS = 25
LEASE_CACHE = 4096
ADD_CONCURRENCY = 16


def _upkeep(rec: AccountItem, now: float) -> AccountItem:
    live = {lid: v for lid, v in rec.leases.items() if v[1] > now}
    return replace(rec, account=upkeep(rec.account, len(rec.leases) - len(live), now), leases=live)


class DynamoDBAccountStore:
    """`AccountStore` on one DynamoDB table (`dynamodb://TABLE`)."""

    def __init__(
        self, table: str, *, rng: random.Random | None = None, **access: Unpack[TableAccess]
    ) -> None:
        self.table = table
        # Shared with the record and response stores kept in the same table.
        self.db = DynamoDBTable(
            table, table_definition, name="account store", workers=16, time_to_live=TIME_TO_LIVE, **access
        )
        self._rng = rng or random.Random()
        self._last_sweep = float("-inf")
        # lease id -> the item as written then (a release needs no read): safe to lose
        self._leased: OrderedDict[str, AccountItem] = OrderedDict()

    @classmethod
    def from_url(cls, url: str, environ: Mapping[str, str] | None = None) -> DynamoDBAccountStore:
        """`dynamodb://TABLE`; region and endpoint from the standard AWS variables."""
        return cls(**location(url, environ))

    async def ensure_table(self) -> None:
        await self.db.ensure()

    async def _read(self, account_id: str) -> AccountItem | None:
        reply = await self.db.call("get_item", Key={"pk": {"S": account_id}}, ConsistentRead=True)
        return from_item(reply["Item"]) if "Item" in reply else None

    async def _write(self, rec: AccountItem, now: float, *, new: bool = False) -> AccountItem:
        """Write `rec` if the stored version is still the one it was read at; raise Conflict if not."""
        written = replace(rec, ver=rec.ver + 1)
        condition = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if new
            else {
                "ConditionExpression": "ver = :v",
                "ExpressionAttributeValues": {":v": number(rec.ver)},
            }
        )
        await self.db.call(
            "put_item",
            Item=to_item(written, now),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **condition,
        )
        return written

    async def _update(
        self, account_id: str, change: Callable[[AccountItem], AccountItem | None], now: float
    ) -> AccountItem | None:
        """Read, change, write conditionally; again on a lost race. None when absent or declined."""
        rec = await self._read(account_id)
        for _ in range(MAX_ATTEMPTS):
            if rec is None:
                return None
            changed = change(rec)
            if changed is None:
                return None
            try:
                return await self._write(changed, now)
            except Conflict as conflict:
                rec = from_item(conflict.item) if conflict.item else await self._read(account_id)
        raise StoreUnavailable("The account store is too contended; try again.")

    # -- the port -------------------------------------------------------------------------

    async def add(self, accounts: Sequence[NewAccount], now: float) -> ImportReport:
        fresh: dict[str, NewAccount] = {}
        for new in accounts:
            fresh.setdefault(new.id, new)
        gate = asyncio.Semaphore(ADD_CONCURRENCY)

        async def put(new: NewAccount) -> bool:
            account = new.account(now)
            async with gate:
                try:
                    await self._write(AccountItem(account, {}, 0.0, 0.0, 0), now, new=True)
                except Conflict:
                    return False
            return True

        # One conditional put per account (attribute_not_exists): exact "skip if present" semantics.
        results = await asyncio.gather(*(put(new) for new in fresh.values()))
        added = sum(results)
        return ImportReport(added=added, skipped=len(accounts) - added, invalid=0)

    async def get(self, account_id: str) -> Account | None:
        rec = await self._read(account_id)
        return rec.account if rec else None

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
        limit = max(1, limit)
        filters, values, names = [], {":l": {"S": ALL}}, {}
        if status is not None:
            filters.append("#st = :st")
            values[":st"] = {"S": status.value}
            names["#st"] = "status"
        if tier is not None:
            filters.append("tier = :tier")
            values[":tier"] = {"S": tier.value}
        extra: dict[str, Any] = {}
        if filters:
            extra["FilterExpression"] = " AND ".join(filters)
        if names:
            extra["ExpressionAttributeNames"] = names
        start = {"pk": {"S": cursor}, "l": {"S": ALL}} if cursor else None
        found: list[Account] = []
        while len(found) <= limit:
            page_args = dict(extra, ExclusiveStartKey=start) if start else extra
            reply = await self.db.call(
                "query",
                IndexName="ids",
                KeyConditionExpression="l = :l",
                ExpressionAttributeValues=values,
                Limit=max(limit + 1, 100),
                **page_args,
            )
            for item in reply.get("Items", []):
                account = from_item(item).account
                # Tag and text are checked here: DynamoDB filters are case-sensitive.
                if not matches(account, tag, text):
                    continue
                found.append(account)
                if len(found) > limit:
                    break
            start = reply.get("LastEvaluatedKey")
            if not start:
                break
        items = found[:limit]
        return AccountPage(items, items[-1].id if len(found) > limit else None)

    async def remove(self, account_id: str) -> bool:
        reply = await self.db.call("delete_item", Key={"pk": {"S": account_id}}, ReturnValues="ALL_OLD")
        return "Attributes" in reply

    async def set_status(self, account_id: str, status: AccountStatus, reason: str, now: float) -> bool:
        def change(rec: AccountItem) -> AccountItem:
            return replace(rec, account=replace(rec.account, status=status, reason=reason, cooling_until=0.0))

        return await self._update(account_id, change, now) is not None

    async def set_quota(self, account_id: str, mode: str, quota: Quota) -> bool:
        def change(rec: AccountItem) -> AccountItem:
            return replace(rec, account=replace(rec.account, quotas={**rec.account.quotas, mode: quota}))

        return await self._update(account_id, change, 0.0) is not None

    async def update(self, account_id: str, change: AccountUpdate) -> bool:
        def edit(rec: AccountItem) -> AccountItem:
            return replace(rec, account=change.apply(rec.account))

        return await self._update(account_id, edit, 0.0) is not None

    async def _sweep(self, now: float) -> None:
        self._last_sweep = now
        reply = await self.db.call(
            "query",
            IndexName="due",
            KeyConditionExpression="d = :d AND due_at <= :now",
            ExpressionAttributeValues={":d": {"S": DUE}, ":now": number(float(now))},
            Limit=SWEEP_LIMIT,
        )

        async def one(account_id: str) -> None:
            try:
                await self._update(account_id, lambda rec: _upkeep(rec, now), now)
            except StoreUnavailable:
                pass  # contended: a later sweep finishes it

        await asyncio.gather(*(one(item["pk"]["S"]) for item in reply.get("Items", [])))

    async def _candidates(self, mode: str, tier: Tier, now: float) -> list[AccountItem]:
        reply = await self.db.call(
            "query",
            IndexName=f"pick_{mode}",
            KeyConditionExpression="#p = :t",
            ExpressionAttributeNames={"#p": f"p_{mode}"},
            ExpressionAttributeValues={":t": {"S": tier.value}},
            ScanIndexForward=False,
            Limit=PICK_WINDOW,
        )
        recs = [from_item(item) for item in reply.get("Items", [])]
        return [r for r in recs if candidate(r.account, mode, now) is not None]

    async def lease(self, *, mode: str, tiers: Sequence[Tier], now: float, ttl: float) -> Lease | None:
        ranked = sorted(set(tiers), key=lambda t: t.rank)
        if not ranked or mode not in MODES:
            return None
        swept = False
        if now >= self._last_sweep + SWEEP_EVERY or now < self._last_sweep:
            await self._sweep(now)
            swept = True
        lease_id = "lease_" + uuid.uuid4().hex
        for attempt in range(MAX_ATTEMPTS):
            candidates: list[AccountItem] = []
            for tier in ranked:
                candidates = await self._candidates(mode, tier, now)
                if candidates:
                    break
            if not candidates:
                if swept:
                    return None
                await self._sweep(now)
                swept = True
                continue
            rec = self._pick(candidates, mode, now, first=attempt == 0)
            while rec is not None:
                try:
                    written = await self._write(_reserve(rec, mode, now, lease_id, now + ttl), now)
                except Conflict as conflict:
                    fresh = from_item(conflict.item) if conflict.item else None
                    rec = (
                        fresh
                        if fresh is not None and candidate(fresh.account, mode, now) is not None
                        else None
                    )
                    continue
                self._remember(lease_id, written)
                a = written.account
                return Lease(lease_id, a.id, a.token, a.tier, mode, now + ttl)
        raise StoreUnavailable("The account store is too contended; try again.")

    def _pick(self, recs: list[AccountItem], mode: str, now: float, *, first: bool) -> AccountItem:
        by_id = {r.account.id: r for r in recs}
        found = [c for r in recs if (c := candidate(r.account, mode, now)) is not None]
        pick = choose(found, self._rng, contended=not first)
        assert pick is not None
        return by_id[pick.account_id]

    def _remember(self, lease_id: str, rec: AccountItem) -> None:
        self._leased[lease_id] = rec
        while len(self._leased) > LEASE_CACHE:
            self._leased.popitem(last=False)

    async def release(self, lease: Lease, outcome: Outcome, now: float) -> bool:
        rec = self._leased.pop(lease.id, None) or await self._read(lease.account_id)
        for _ in range(MAX_ATTEMPTS):
            if rec is None or lease.id not in rec.leases:
                return False
            leases = {k: v for k, v in rec.leases.items() if k != lease.id}
            changed = replace(
                rec, account=apply_outcome(rec.account, lease.mode, outcome, now), leases=leases
            )
            try:
                await self._write(changed, now)
                return True
            except Conflict as conflict:
                rec = from_item(conflict.item) if conflict.item else await self._read(lease.account_id)
        raise StoreUnavailable("The account store is too contended; try again.")

    async def ping(self) -> None:
        await self.db.call("describe_table")

    async def aclose(self) -> None:
        await self.db.aclose()

    # -- quota upkeep (RefreshLedger) -----------------------------------------------------

    async def due_for_refresh(self, *, now: float, limit: int) -> list[Account]:
        reply = await self.db.call(
            "query",
            IndexName="refresh",
            KeyConditionExpression="l = :l AND refresh_at <= :now",
            ExpressionAttributeValues={":l": {"S": ALL}, ":now": number(float(now))},
            Limit=limit,
        )
        accounts = await asyncio.gather(*(self.get(item["pk"]["S"]) for item in reply.get("Items", [])))
        return [a for a in accounts if a is not None]

    async def claim_refresh(
        self, account_id: str, *, now: float, next_at: float, min_interval: float
    ) -> bool:
        def change(rec: AccountItem) -> AccountItem | None:
            if now - rec.refreshed_at < min_interval:
                return None
            return replace(rec, refreshed_at=now, refresh_at=next_at)

        return await self._update(account_id, change, now) is not None


def _reserve(rec: AccountItem, mode: str, now: float, lease_id: str, expires_at: float) -> AccountItem:
    rec = _upkeep(rec, now)
    return replace(
        rec, account=reserve(rec.account, mode, now), leases={**rec.leases, lease_id: (mode, expires_at)}
    )
