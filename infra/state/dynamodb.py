"""The account store on DynamoDB: one item per account, optimistic conditional writes.

An account is one item, so every change to it (a lease, a release, an operator action) is one
`PutItem` conditioned on the version the writer read (`ver = :v`): a lost race is a
`ConditionalCheckFailedException`, answered with the fresh item (`ReturnValuesOnConditionCheckFailure`)
and decided again. The pure policy of `core.selection.policy` computes each new state, exactly
as in the SQLite store. Leases live inside the item (`leases`), so a lease is atomic with
the unit it reserves and the in-flight count.

Selection needs no scan: each account carries, per mode, sparse GSI keys `p_<mode>` (its tier,
present only while it is ACTIVE with quota left) and `s_<mode>` (a rank score: remaining quota,
then fewer in flight, then least recently used), so a lease reads the top few of one index
partition per tier. Upkeep is indexed too: `due_at` (GSI `due`) is the earliest time the item
needs attention (a lease expiry, the end of cooling, the end of a spent window); `refresh_at`
(GSI `refresh`) orders quota refreshes; GSI `ids` pages accounts in id order.

boto3 is synchronous: calls run in a small thread pool; boto3 is imported on first use.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from decimal import Decimal
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
    matches,
)
from core.catalog import Tier
from core.errors import StoreUnavailable
from core.ports import AccountPage
from core.selection.policy import Candidate, apply_outcome, choose

T = TypeVar("T")

MODES = ("auto", "fast", "expert", "heavy")  # one pick index each (a table may have 20 GSIs)
PICK_WINDOW = 8
SWEEP_LIMIT = 50
SWEEP_EVERY = 1.0  # seconds of store time between two upkeep queries from one process
MAX_ATTEMPTS = 25
LEASE_CACHE = 4096
ADD_CONCURRENCY = 16
ALL = "a"  # the one partition of the `ids` and `refresh` indexes
DUE = "due"
LRU_EPOCH = 1704067200


@dataclass(frozen=True, slots=True)
class _Rec:
    account: Account
    leases: dict[str, tuple[str, float]]  # lease id -> (mode, expires_at)
    refresh_at: float
    refreshed_at: float
    ver: int


class _Conflict(Exception):
    def __init__(self, item: dict[str, Any] | None) -> None:
        self.item = item


def _num(x: float) -> dict[str, str]:
    return {"N": format(Decimal(repr(float(x))), "f") if isinstance(x, float) else str(x)}


def score(remaining: int, in_flight: int, last_used_at: float) -> int:
    """Higher ranks first: remaining quota, then fewer in flight, then least recently used."""
    remaining = min(max(remaining, 0), 2**20 - 1)
    in_flight = min(max(in_flight, 0), 1023)
    lru = min(max(int((last_used_at - LRU_EPOCH) // 60), 0), 2**23 - 1)
    return remaining * 2**33 + (1023 - in_flight) * 2**23 + (2**23 - 1 - lru)


def _to_item(rec: _Rec, now: float) -> dict[str, Any]:
    a = rec.account
    item: dict[str, Any] = {
        "pk": {"S": a.id},
        "token": {"S": a.token},
        "tier": {"S": a.tier.value},
        "tier_source": {"S": a.tier_source.value},
        "status": {"S": a.status.value},
        "note": {"S": a.note},
        "tags": {"S": json.dumps(list(a.tags))},
        "in_flight": _num(a.in_flight),
        "cooling_until": _num(float(a.cooling_until)),
        "reason": {"S": a.reason},
        "created_at": _num(float(a.created_at)),
        "last_used_at": _num(float(a.last_used_at)),
        "last_failure_at": _num(float(a.last_failure_at)),
        "use_count": _num(a.use_count),
        "fail_count": _num(a.fail_count),
        "ver": _num(rec.ver),
        "l": {"S": ALL},
        "refresh_at": _num(float(rec.refresh_at)),
        "refreshed_at": _num(float(rec.refreshed_at)),
        # JSON strings rather than nested maps: the item is always read and written whole.
        "quotas": {
            "S": json.dumps(
                {m: [q.remaining, q.total, q.window_seconds, float(q.reset_at)] for m, q in a.quotas.items()}
            )
        },
        "leases": {"S": json.dumps({lid: [m, float(e)] for lid, (m, e) in rec.leases.items()})},
    }
    for m, q in a.quotas.items():
        if m in MODES and a.status is AccountStatus.ACTIVE and q.current(now).remaining > 0:
            item[f"p_{m}"] = {"S": a.tier.value}
            item[f"s_{m}"] = _num(score(q.current(now).remaining, a.in_flight, a.last_used_at))
    due = [e for _, e in rec.leases.values()]
    if a.status is AccountStatus.COOLING:
        due.append(a.cooling_until)
    due.extend(q.reset_at for q in a.quotas.values() if q.remaining < q.total)
    if due:
        item["d"] = {"S": DUE}
        item["due_at"] = _num(float(min(due)))
    return item


def _from_item(item: dict[str, Any]) -> _Rec:
    def n(name: str) -> float:
        return float(item[name]["N"]) if name in item else 0.0

    quotas = {
        m: Quota(int(r), int(t), int(w), float(x))
        for m, (r, t, w, x) in json.loads(item.get("quotas", {}).get("S", "{}")).items()
    }
    account = Account(
        id=item["pk"]["S"],
        token=item["token"]["S"],
        tier=Tier(item["tier"]["S"]),
        tier_source=TierSource(item.get("tier_source", {}).get("S", "assumed")),
        status=AccountStatus(item["status"]["S"]),
        note=item.get("note", {}).get("S", ""),
        tags=tuple(json.loads(item.get("tags", {}).get("S", "[]"))),
        quotas=quotas,
        in_flight=int(n("in_flight")),
        cooling_until=n("cooling_until"),
        reason=item.get("reason", {}).get("S", ""),
        created_at=n("created_at"),
        last_used_at=n("last_used_at"),
        last_failure_at=n("last_failure_at"),
        use_count=int(n("use_count")),
        fail_count=int(n("fail_count")),
    )
    leases = {lid: (m, float(e)) for lid, (m, e) in json.loads(item.get("leases", {}).get("S", "{}")).items()}
    return _Rec(account, leases, n("refresh_at"), n("refreshed_at"), int(n("ver")))


def _upkeep(rec: _Rec, now: float) -> _Rec:
    """Expired leases return their in-flight count, cooling ends, ended windows refill."""
    a = rec.account
    live = {lid: v for lid, v in rec.leases.items() if v[1] > now}
    in_flight = max(0, a.in_flight - (len(rec.leases) - len(live)))
    quotas = {m: q.current(now) for m, q in a.quotas.items()}
    status, cooling = a.status, a.cooling_until
    if status is AccountStatus.COOLING and cooling <= now:
        status, cooling = AccountStatus.ACTIVE, 0.0
    account = replace(a, quotas=quotas, in_flight=in_flight, status=status, cooling_until=cooling)
    return replace(rec, account=account, leases=live)


def table_definition(table: str) -> dict[str, Any]:
    """The `CreateTable` request for the store's table (also what IaC should declare)."""
    gsis = [
        {
            "IndexName": f"pick_{m}",
            "KeySchema": [
                {"AttributeName": f"p_{m}", "KeyType": "HASH"},
                {"AttributeName": f"s_{m}", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
        for m in MODES
    ]
    gsis += [
        {
            "IndexName": "due",
            "KeySchema": [
                {"AttributeName": "d", "KeyType": "HASH"},
                {"AttributeName": "due_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        },
        {
            "IndexName": "ids",
            "KeySchema": [
                {"AttributeName": "l", "KeyType": "HASH"},
                {"AttributeName": "pk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        },
        {
            "IndexName": "refresh",
            "KeySchema": [
                {"AttributeName": "l", "KeyType": "HASH"},
                {"AttributeName": "refresh_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        },
    ]
    attrs = [("pk", "S"), ("l", "S"), ("d", "S"), ("due_at", "N"), ("refresh_at", "N")]
    attrs += [(f"p_{m}", "S") for m in MODES] + [(f"s_{m}", "N") for m in MODES]
    return {
        "TableName": table,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in attrs],
        "GlobalSecondaryIndexes": gsis,
    }


# DynamoDB's own expiry (stored responses carry it; accounts never do). Not part of CreateTable:
# set with UpdateTimeToLive, declared as the table's TimeToLiveSpecification in IaC.
TIME_TO_LIVE = {"AttributeName": "gc_at", "Enabled": True}


class DynamoDBAccountStore:
    """`AccountStore` on one DynamoDB table (`dynamodb://TABLE`)."""

    def __init__(
        self,
        table: str,
        *,
        client: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        timeout: float = 5.0,
        create_table: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        self.table = table
        self._client = client
        self._region = region
        self._endpoint = endpoint_url
        self._timeout = timeout
        self._create = create_table
        self._rng = rng or random.Random()
        self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="dynamodb-store")
        self._last_sweep = float("-inf")
        self._leased: OrderedDict[str, _Rec] = OrderedDict()  # lease id -> item as written: safe to lose

    @classmethod
    def from_url(cls, url: str, environ: dict[str, str] | None = None) -> DynamoDBAccountStore:
        """`dynamodb://TABLE`; region and endpoint from the standard AWS variables."""
        import os

        env = os.environ if environ is None else environ
        return cls(
            url.removeprefix("dynamodb://").strip("/"),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint_url=env.get("AWS_ENDPOINT_URL_DYNAMODB") or env.get("AWS_ENDPOINT_URL") or None,
        )

    # -- plumbing -------------------------------------------------------------------------

    def _boto(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                connect_timeout=min(self._timeout, 3.0),
                read_timeout=self._timeout,
                retries={"max_attempts": 2, "mode": "standard"},
                max_pool_connections=16,
            )
            self._client = boto3.client(
                "dynamodb", region_name=self._region, endpoint_url=self._endpoint, config=config
            )
        return self._client

    async def _call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            from botocore.exceptions import BotoCoreError, ClientError

            client = self._boto()
            for attempt in (0, 1):
                try:
                    result: dict[str, Any] = getattr(client, op)(TableName=self.table, **kwargs)
                    return result
                except ClientError as exc:
                    code = exc.response.get("Error", {}).get("Code", "")
                    if code == "ConditionalCheckFailedException":
                        raise _Conflict(exc.response.get("Item")) from None
                    if code == "ResourceNotFoundException" and self._create and attempt == 0:
                        self._create_table(client)
                        continue
                    raise StoreUnavailable(
                        f"The account store is unavailable ({code or 'ClientError'})."
                    ) from None
                except BotoCoreError as exc:
                    raise StoreUnavailable(
                        f"The account store is unavailable ({type(exc).__name__})."
                    ) from None
            raise StoreUnavailable("The account store is unavailable (no table).")

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _create_table(self, client: Any) -> None:
        from botocore.exceptions import ClientError

        try:
            client.create_table(**table_definition(self.table))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
        client.get_waiter("table_exists").wait(
            TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        try:
            client.update_time_to_live(TableName=self.table, TimeToLiveSpecification=TIME_TO_LIVE)
        except ClientError as exc:  # already enabled (by another instance, or by IaC)
            if exc.response.get("Error", {}).get("Code") != "ValidationException":
                raise

    async def ensure_table(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._create_table, self._boto())

    async def _read(self, account_id: str) -> _Rec | None:
        reply = await self._call("get_item", Key={"pk": {"S": account_id}}, ConsistentRead=True)
        return _from_item(reply["Item"]) if "Item" in reply else None

    async def _write(self, rec: _Rec, now: float, *, new: bool = False) -> _Rec:
        """Write `rec` if the stored version is still the one it was read at; raise _Conflict if not."""
        written = replace(rec, ver=rec.ver + 1)
        condition = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if new
            else {
                "ConditionExpression": "ver = :v",
                "ExpressionAttributeValues": {":v": _num(rec.ver)},
            }
        )
        await self._call(
            "put_item",
            Item=_to_item(written, now),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **condition,
        )
        return written

    async def _update(
        self, account_id: str, change: Callable[[_Rec], _Rec | None], now: float
    ) -> _Rec | None:
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
            except _Conflict as conflict:
                rec = _from_item(conflict.item) if conflict.item else await self._read(account_id)
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
                    await self._write(_Rec(account, {}, 0.0, 0.0, 0), now, new=True)
                except _Conflict:
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
            reply = await self._call(
                "query",
                IndexName="ids",
                KeyConditionExpression="l = :l",
                ExpressionAttributeValues=values,
                Limit=max(limit + 1, 100),
                **page_args,
            )
            for item in reply.get("Items", []):
                account = _from_item(item).account
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
        reply = await self._call("delete_item", Key={"pk": {"S": account_id}}, ReturnValues="ALL_OLD")
        return "Attributes" in reply

    async def set_status(self, account_id: str, status: AccountStatus, reason: str, now: float) -> bool:
        def change(rec: _Rec) -> _Rec:
            return replace(rec, account=replace(rec.account, status=status, reason=reason, cooling_until=0.0))

        return await self._update(account_id, change, now) is not None

    async def set_quota(self, account_id: str, mode: str, quota: Quota) -> bool:
        def change(rec: _Rec) -> _Rec:
            return replace(rec, account=replace(rec.account, quotas={**rec.account.quotas, mode: quota}))

        return await self._update(account_id, change, 0.0) is not None

    async def update(self, account_id: str, change: AccountUpdate) -> bool:
        def edit(rec: _Rec) -> _Rec:
            return replace(rec, account=change.apply(rec.account))

        return await self._update(account_id, edit, 0.0) is not None

    async def _sweep(self, now: float) -> None:
        self._last_sweep = now
        reply = await self._call(
            "query",
            IndexName="due",
            KeyConditionExpression="d = :d AND due_at <= :now",
            ExpressionAttributeValues={":d": {"S": DUE}, ":now": _num(float(now))},
            Limit=SWEEP_LIMIT,
        )

        async def one(account_id: str) -> None:
            try:
                await self._update(account_id, lambda rec: _upkeep(rec, now), now)
            except StoreUnavailable:
                pass  # contended: a later sweep finishes it

        await asyncio.gather(*(one(item["pk"]["S"]) for item in reply.get("Items", [])))

    async def _candidates(self, mode: str, tier: Tier, now: float) -> list[_Rec]:
        reply = await self._call(
            "query",
            IndexName=f"pick_{mode}",
            KeyConditionExpression="#p = :t",
            ExpressionAttributeNames={"#p": f"p_{mode}"},
            ExpressionAttributeValues={":t": {"S": tier.value}},
            ScanIndexForward=False,
            Limit=PICK_WINDOW,
        )
        recs = [_from_item(item) for item in reply.get("Items", [])]
        return [r for r in recs if _usable(r, mode, now)]

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
            candidates: list[_Rec] = []
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
                except _Conflict as conflict:
                    fresh = _from_item(conflict.item) if conflict.item else None
                    rec = fresh if fresh is not None and _usable(fresh, mode, now) else None
                    continue
                self._remember(lease_id, written)
                a = written.account
                return Lease(lease_id, a.id, a.token, a.tier, mode, now + ttl)
        raise StoreUnavailable("The account store is too contended; try again.")

    def _pick(self, recs: list[_Rec], mode: str, now: float, *, first: bool) -> _Rec:
        if not first:  # after a lost race, spread out instead of all chasing the same best
            return self._rng.choice(recs)
        by_id = {r.account.id: r for r in recs}
        pick = choose(
            [
                Candidate(
                    r.account.id,
                    r.account.tier,
                    r.account.quotas[mode].current(now).remaining,
                    r.account.in_flight,
                    r.account.last_used_at,
                )
                for r in recs
            ],
            self._rng,
        )
        assert pick is not None
        return by_id[pick.account_id]

    def _remember(self, lease_id: str, rec: _Rec) -> None:
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
            except _Conflict as conflict:
                rec = _from_item(conflict.item) if conflict.item else await self._read(lease.account_id)
        raise StoreUnavailable("The account store is too contended; try again.")

    async def ping(self) -> None:
        await self._call("describe_table")

    async def close(self) -> None:
        self._executor.shutdown(wait=False)

    # -- quota upkeep (RefreshLedger) -----------------------------------------------------

    async def due_for_refresh(self, *, now: float, limit: int) -> list[Account]:
        reply = await self._call(
            "query",
            IndexName="refresh",
            KeyConditionExpression="l = :l AND refresh_at <= :now",
            ExpressionAttributeValues={":l": {"S": ALL}, ":now": _num(float(now))},
            Limit=limit,
        )
        accounts = await asyncio.gather(*(self.get(item["pk"]["S"]) for item in reply.get("Items", [])))
        return [a for a in accounts if a is not None]

    async def claim_refresh(
        self, account_id: str, *, now: float, next_at: float, min_interval: float
    ) -> bool:
        def change(rec: _Rec) -> _Rec | None:
            if now - rec.refreshed_at < min_interval:
                return None
            return replace(rec, refreshed_at=now, refresh_at=next_at)

        return await self._update(account_id, change, now) is not None


def _usable(rec: _Rec, mode: str, now: float) -> bool:
    q = rec.account.quotas.get(mode)
    return rec.account.status is AccountStatus.ACTIVE and q is not None and q.current(now).remaining > 0


def _reserve(rec: _Rec, mode: str, now: float, lease_id: str, expires_at: float) -> _Rec:
    rec = _upkeep(rec, now)
    a = rec.account
    q = a.quotas[mode]
    account = replace(
        a,
        quotas={**a.quotas, mode: replace(q, remaining=q.remaining - 1)},
        in_flight=a.in_flight + 1,
        last_used_at=now,
    )
    return replace(rec, account=account, leases={**rec.leases, lease_id: (mode, expires_at)})
