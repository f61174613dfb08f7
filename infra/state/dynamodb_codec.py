"""How an account is kept in the DynamoDB account store's table: the item, its index keys, the table.

An account is one item (`pk` = its id). Besides the account's fields it carries the leases held
on it, when its quota is next refreshed, and a version (`ver`) each conditional write checks.
Selection needs no scan: per mode, sparse GSI keys `p_<mode>` (the tier, present only while the
account is ACTIVE with quota left) and `s_<mode>` (`score`: the rank within a tier). Upkeep is
indexed too: `due_at` (GSI `due`) is the earliest time the item needs attention (a lease expiry,
the end of cooling, the end of a spent window); `refresh_at` (GSI `refresh`) orders quota
refreshes; GSI `ids` pages accounts in id order. Records and stored responses share the table
under other `pk` prefixes (`rec#`, `resp#`) and stay out of these indexes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.accounts import Account, AccountStatus, Quota, TierSource
from core.catalog import Tier
from infra.dynamodb_table import number, table_request

MODES = ("auto", "fast", "expert", "heavy")  # one pick index each (a table may have 20 GSIs)
ALL = "a"  # the one partition of the `ids` and `refresh` indexes
DUE = "due"
LRU_EPOCH = 1704067200


@dataclass(frozen=True, slots=True)
class AccountItem:
    """An account as its item holds it."""

    account: Account
    leases: dict[str, tuple[str, float]]  # lease id -> (mode, expires_at)
    refresh_at: float
    refreshed_at: float
    ver: int


def score(remaining: int, in_flight: int, last_used_at: float) -> int:
    """Higher ranks first: remaining quota, then fewer in flight, then least recently used."""
    remaining = min(max(remaining, 0), 2**20 - 1)
    in_flight = min(max(in_flight, 0), 1023)
    lru = min(max(int((last_used_at - LRU_EPOCH) // 60), 0), 2**23 - 1)
    return remaining * 2**33 + (1023 - in_flight) * 2**23 + (2**23 - 1 - lru)


def to_item(rec: AccountItem, now: float) -> dict[str, Any]:
    """The item for `rec`, with the index keys it has at `now`."""
    a = rec.account
    item: dict[str, Any] = {
        "pk": {"S": a.id},
        "token": {"S": a.token},
        "tier": {"S": a.tier.value},
        "tier_source": {"S": a.tier_source.value},
        "status": {"S": a.status.value},
        "note": {"S": a.note},
        "tags": {"S": json.dumps(list(a.tags))},
        "in_flight": number(a.in_flight),
        "cooling_until": number(float(a.cooling_until)),
        "reason": {"S": a.reason},
        "created_at": number(float(a.created_at)),
        "last_used_at": number(float(a.last_used_at)),
        "last_failure_at": number(float(a.last_failure_at)),
        "use_count": number(a.use_count),
        "fail_count": number(a.fail_count),
        "ver": number(rec.ver),
        "l": {"S": ALL},
        "refresh_at": number(float(rec.refresh_at)),
        "refreshed_at": number(float(rec.refreshed_at)),
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
            item[f"s_{m}"] = number(score(q.current(now).remaining, a.in_flight, a.last_used_at))
    due = [e for _, e in rec.leases.values()]
    if a.status is AccountStatus.COOLING:
        due.append(a.cooling_until)
    due.extend(q.reset_at for q in a.quotas.values() if q.remaining < q.total)
    if due:
        item["d"] = {"S": DUE}
        item["due_at"] = number(float(min(due)))
    return item


def from_item(item: dict[str, Any]) -> AccountItem:
    """The account (and the rest) an item holds; attributes added later default."""

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
    return AccountItem(account, leases, n("refresh_at"), n("refreshed_at"), int(n("ver")))


def table_definition(table: str) -> dict[str, Any]:
    """The `CreateTable` request for the store's table (also what IaC should declare)."""
    attributes = [("pk", "S"), ("l", "S"), ("d", "S"), ("due_at", "N"), ("refresh_at", "N")]
    attributes += [(f"p_{m}", "S") for m in MODES] + [(f"s_{m}", "N") for m in MODES]
    indexes = [(f"pick_{m}", f"p_{m}", f"s_{m}", "ALL") for m in MODES]
    indexes += [
        ("due", "d", "due_at", "KEYS_ONLY"),
        ("ids", "l", "pk", "ALL"),
        ("refresh", "l", "refresh_at", "KEYS_ONLY"),
    ]
    return table_request(table, attributes, indexes)


# DynamoDB's own expiry (stored responses carry it; accounts never do). Not part of CreateTable:
# set with UpdateTimeToLive, declared as the table's TimeToLiveSpecification in IaC.
TIME_TO_LIVE = {"AttributeName": "gc_at", "Enabled": True}
