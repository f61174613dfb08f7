"""Account upkeep: accept the terms of service, set a birth date, enable NSFW (docs/protocol.md#upkeep), per
account, with the result kept beside the account in the store's records (`upkeep:<account id>`).

Each step reports `done`, `already` (the birth date was locked: already set) or `failed: <why>`;
the record keeps when each step last succeeded and the last error. The calls go through the
upstream's `AccountCalls` (egress, clearance, statsig and their one recovery included).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from core.ports import RecordStore

STEPS = ("tos", "birth_date", "nsfw")
DEFAULT_BIRTH_DATE = "1990-06-14"


class AccountCalls(Protocol):
    """The upkeep calls of one account; each returns None on success, or raises
    `core.protocol.classify.UpstreamFailure`; `set_birth_date` returns "already" when locked."""

    async def accept_tos(self, token: str) -> None: ...

    async def set_birth_date(self, token: str, date: str) -> str | None: ...

    async def enable_nsfw(self, token: str) -> None: ...


async def run_upkeep(
    calls: AccountCalls,
    records: RecordStore | None,
    account_id: str,
    token: str,
    now: float,
    *,
    steps: Sequence[str] = STEPS,
    birth_date: str = DEFAULT_BIRTH_DATE,
) -> dict[str, Any]:
    """Run `steps` in the order of STEPS (birth date before NSFW, as the web app needs) and keep
    the result; returns the account's upkeep state."""
    from core.protocol.classify import UpstreamFailure

    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown upkeep steps: {', '.join(unknown)} (known: {', '.join(STEPS)})")
    results: dict[str, str] = {}
    for step in (s for s in STEPS if s in steps):
        try:
            if step == "tos":
                await calls.accept_tos(token)
                outcome = "done"
            elif step == "birth_date":
                outcome = await calls.set_birth_date(token, birth_date) or "done"
            else:
                await calls.enable_nsfw(token)
                outcome = "done"
        except UpstreamFailure as failure:
            outcome = f"failed: {failure.reason}"
        results[step] = outcome
    key = f"upkeep:{account_id}"
    state: dict[str, Any] = {}
    if records is not None:
        for _ in range(3):  # a compare-and-set, merged with a concurrent run's
            stored, version = await records.read(key, now=now)
            state = dict(stored or {})
            for step, outcome in results.items():
                state[step] = outcome
                if not outcome.startswith("failed"):
                    state[f"{step}_at"] = now
            state["updated_at"] = now
            if await records.write(key, state, version=version, now=now):
                break
    else:
        state = {**results, "updated_at": now}
    return state


async def upkeep_state(records: RecordStore | None, account_id: str, now: float) -> dict[str, Any]:
    if records is None:
        return {}
    value, _ = await records.read(f"upkeep:{account_id}", now=now)
    return value or {}
