"""Batch actions on accounts (enable, disable, reset, refresh quota, accept the ToS, enable NSFW),
kept as records in the store.

A batch is one record (`batch:<id>`): the action, the account ids, how many are done and one
result per done account. Whoever calls `advance` (the console polling it, the admin function,
cron) claims the record with a compare-and-set, does the next step of accounts and writes the
results back, so a batch goes on when the page that started it is closed, and two callers never
do the same step at once. Each action is idempotent, so a step redone after a crash is harmless.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from core.accounts import AccountStatus
from core.errors import InvalidRequest, NotFound
from core.ports import AccountStore, RecordStore
from core.services.quota import FetchRateLimits, refresh_account
from core.services.upkeep import AccountCalls, run_upkeep

ACTIONS = ("enable", "disable", "reset", "refresh", "accept_tos", "nsfw")
# The upkeep steps each upkeep action runs (core.services.upkeep; NSFW needs the birth date first).
UPKEEP_STEPS = {"accept_tos": ("tos",), "nsfw": ("birth_date", "nsfw")}
MAX_ACCOUNTS = 1000  # a batch record stays well under DynamoDB's 400 KB item limit
CLAIM_SECONDS = 60.0  # a step's claim; a caller that died mid-step frees the batch after this
KEEP_SECONDS = 7 * 86400.0
INDEX = "batches"
RECENT = 30

Action = Callable[[str, float], Awaitable[tuple[bool, str]]]


def _key(batch_id: str) -> str:
    return "batch:" + batch_id


def actions_for(
    store: AccountStore,
    fetch: FetchRateLimits | None,
    intervals: Mapping[str, float] | None = None,
    upkeep: AccountCalls | None = None,
    records: RecordStore | None = None,
) -> dict[str, Action]:
    """Each action on one account: (ok, what happened)."""

    async def set_status(account_id: str, status: AccountStatus, reason: str, now: float) -> tuple[bool, str]:
        if not await store.set_status(account_id, status, reason, now):
            return False, "no such account"
        return True, status.value

    async def refresh(account_id: str, now: float) -> tuple[bool, str]:
        account = await store.get(account_id)
        if account is None:
            return False, "no such account"
        if fetch is None:
            return False, "no quota fetcher"
        result = await refresh_account(store, fetch, account, now, intervals=intervals)  # type: ignore[arg-type]
        if result == "skipped":
            return True, "skipped (refreshed in the last 5 minutes, or not active)"
        return result == "refreshed", result

    def upkeep_action(steps: Sequence[str]) -> Action:
        async def run(account_id: str, now: float) -> tuple[bool, str]:
            account = await store.get(account_id)
            if account is None:
                return False, "no such account"
            if upkeep is None:
                return False, "no upkeep client"
            state = await run_upkeep(upkeep, records, account_id, account.token, now, steps=steps)
            outcomes = [f"{step}: {state.get(step, '?')}" for step in steps]
            return all(not str(state.get(step, "")).startswith("failed") for step in steps), ", ".join(
                outcomes
            )

        return run

    return {
        "accept_tos": upkeep_action(UPKEEP_STEPS["accept_tos"]),
        "nsfw": upkeep_action(UPKEEP_STEPS["nsfw"]),
        "enable": lambda i, now: set_status(i, AccountStatus.ACTIVE, "", now),
        "reset": lambda i, now: set_status(i, AccountStatus.ACTIVE, "", now),
        "disable": lambda i, now: set_status(i, AccountStatus.DISABLED, "disabled by an operator", now),
        "refresh": refresh,
    }


def summary(batch: dict[str, Any]) -> dict[str, Any]:
    """What the console shows of a batch: counts and per-account results."""
    results = batch["results"]
    return {
        "id": batch["id"],
        "action": batch["action"],
        "total": len(batch["ids"]),
        "done": len(results),
        "ok": sum(1 for r in results if r["ok"]),
        "failed": sum(1 for r in results if not r["ok"]),
        "state": batch["state"],
        "created_at": batch["created_at"],
        "updated_at": batch["updated_at"],
        "results": results,
    }


async def create(records: RecordStore, action: str, account_ids: Sequence[str], now: float) -> dict[str, Any]:
    """Record a new batch (nothing is done yet: `advance` does it) and list it among the recent."""
    if action not in ACTIONS:
        raise InvalidRequest(f"`action` must be one of: {', '.join(ACTIONS)}.", param="action")
    ids = list(dict.fromkeys(str(i) for i in account_ids))
    if not ids:
        raise InvalidRequest("`ids` must name at least one account.", param="ids")
    if len(ids) > MAX_ACCOUNTS:
        raise InvalidRequest(f"A batch takes at most {MAX_ACCOUNTS} accounts.", param="ids")
    batch_id = "batch_" + secrets.token_hex(8)
    batch = {
        "id": batch_id,
        "action": action,
        "ids": ids,
        "results": [],
        "state": "running",
        "created_at": now,
        "updated_at": now,
        "claim_until": 0.0,
    }
    await records.write(_key(batch_id), batch, version=0, now=now, ttl=KEEP_SECONDS)
    for _ in range(10):
        index, version = await records.read(INDEX, now=now)
        recent = [batch_id, *(index or {}).get("ids", [])][:RECENT]
        if await records.write(INDEX, {"ids": recent}, version=version, now=now):
            break
    return batch


async def get(records: RecordStore, batch_id: str, now: float) -> dict[str, Any]:
    batch, _ = await records.read(_key(batch_id), now=now)
    if batch is None:
        raise NotFound(f"No batch `{batch_id}`.", param="id", code="batch_not_found")
    return batch


async def recent(records: RecordStore, now: float) -> list[dict[str, Any]]:
    index, _ = await records.read(INDEX, now=now)
    found = []
    for batch_id in (index or {}).get("ids", []):
        batch, _ = await records.read(_key(batch_id), now=now)
        if batch is not None:
            found.append(batch)
    return found


async def advance(
    records: RecordStore,
    actions: dict[str, Action],
    batch_id: str,
    now: float,
    *,
    concurrency: int = 4,
    step: int = 10,
    clock: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """Do the next `step` accounts of a running batch unless another caller holds it; the batch after."""
    key = _key(batch_id)
    batch, version = await records.read(key, now=now)
    if batch is None:
        raise NotFound(f"No batch `{batch_id}`.", param="id", code="batch_not_found")
    if batch["state"] != "running" or batch["claim_until"] > now:
        return batch
    claimed = {**batch, "claim_until": now + CLAIM_SECONDS}
    if not await records.write(key, claimed, version=version, now=now, ttl=KEEP_SECONDS):
        return (await records.read(key, now=now))[0] or batch  # another caller took this step
    done = len(batch["results"])
    todo = batch["ids"][done : done + max(1, step)]
    gate = asyncio.Semaphore(max(1, concurrency))
    act = actions[batch["action"]]

    async def one(account_id: str) -> dict[str, Any]:
        async with gate:
            try:
                ok, detail = await act(account_id, now)
            except Exception as exc:  # one account's failure is its result, not the batch's
                ok, detail = False, getattr(exc, "message", type(exc).__name__)
        return {"id": account_id, "ok": ok, "detail": detail}

    results = await asyncio.gather(*(one(i) for i in todo))
    after = (clock or (lambda: now))()
    finished = done + len(todo) >= len(batch["ids"])
    written = {
        **batch,
        "results": [*batch["results"], *results],
        "state": "done" if finished else "running",
        "updated_at": after,
        "claim_until": 0.0,
    }
    if not await records.write(key, written, version=version + 1, now=after, ttl=KEEP_SECONDS):
        return (await records.read(key, now=after))[0] or batch  # our claim expired and was taken over
    return written


async def advance_running(
    records: RecordStore, actions: dict[str, Action], now: float, *, concurrency: int = 4, step: int = 50
) -> int:
    """One step of every running batch (cron); returns how many batches moved."""
    moved = 0
    for batch in await recent(records, now):
        if batch["state"] == "running":
            await advance(records, actions, batch["id"], now, concurrency=concurrency, step=step)
            moved += 1
    return moved
