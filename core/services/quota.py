"""Quota upkeep: refresh the rate-limit windows of accounts that are due (docs/protocol.md#quotas).

Run by a schedule (`functions/cron.py`) and by an operator's "refresh now". It never stands in
a lease's way: leases use whatever window the store holds, and a refresh only replaces it.
A schedule may deliver twice: each account is claimed in the store first (one claim per
account per `MIN_INTERVAL`), so a second delivery finds nothing to do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from core.accounts import (
    DEFAULT_QUOTAS,
    Account,
    AccountStatus,
    AccountUpdate,
    OutcomeKind,
    Quota,
    TierSource,
    detect_tier,
)
from core.catalog import Tier
from core.ports import AccountStore, QuotaRefreshStore
from core.protocol.classify import UpstreamFailure

log = logging.getLogger("grokgate.quota")

# [v2] schedule: basic every 36000 s, super and heavy every 7200 s; on demand at most every 300 s.
REFRESH_INTERVAL: dict[Tier, float] = {Tier.BASIC: 36000.0, Tier.SUPER: 7200.0, Tier.HEAVY: 7200.0}
MIN_INTERVAL = 300.0
SKIPPED_STATUSES = (AccountStatus.DISABLED, AccountStatus.EXPIRED, AccountStatus.BLOCKED)

FetchRateLimits = Callable[[str, str, float], Awaitable[Quota]]
"""`(token, mode, now) -> Quota`; raises `UpstreamFailure` when the upstream refuses."""


class RefreshableStore(AccountStore, QuotaRefreshStore, Protocol):
    pass


@dataclass
class RefreshReport:
    due: int = 0
    refreshed: int = 0  # accounts whose windows were all replaced
    skipped: int = 0  # claimed by someone else lately, or not refreshable (disabled, expired, blocked)
    failed: int = 0
    accounts: dict[str, str] = field(default_factory=dict)  # id -> what happened (no tokens)

    def as_dict(self) -> dict[str, object]:
        return {
            "due": self.due,
            "refreshed": self.refreshed,
            "skipped": self.skipped,
            "failed": self.failed,
            "accounts": dict(self.accounts),
        }


# Every mode some tier has: asking all of them is what tells the tiers apart (docs/protocol.md#quotas).
ALL_MODES = frozenset(mode for quotas in DEFAULT_QUOTAS.values() for mode in quotas)


def modes_of(account: Account) -> list[str]:
    """The modes worth asking about: the tier's known modes and any the store already holds."""
    return sorted(set(DEFAULT_QUOTAS[account.tier]) | set(account.quotas))


async def refresh_account(
    store: RefreshableStore,
    fetch: FetchRateLimits,
    account: Account,
    now: float,
    *,
    min_interval: float = MIN_INTERVAL,
    intervals: Mapping[str, float] | None = None,
) -> str:
    """Claim and refresh one account; returns what happened: refreshed, skipped, or a failure kind.

    `intervals` (seconds by tier name, `Settings.refresh_intervals()`) schedules the next refresh;
    the [v2] defaults when None.
    """
    next_at = now + (intervals or {}).get(account.tier.value, REFRESH_INTERVAL[account.tier])
    # Claimed even when not refreshable, so such accounts move down the schedule instead of clogging it.
    if not await store.claim_refresh(account.id, now=now, next_at=next_at, min_interval=min_interval):
        return "skipped"
    if account.status in SKIPPED_STATUSES:
        return "skipped"
    own = set(modes_of(account))
    totals: dict[str, int] = {}
    for mode in sorted(own | ALL_MODES):
        try:
            quota = await fetch(account.token, mode, now)
        except UpstreamFailure as failure:
            outcome = failure.outcome(now, 0.0)
            if outcome.kind in (OutcomeKind.EXPIRED, OutcomeKind.BLOCKED):
                status = AccountStatus(outcome.kind.value)
                await store.set_status(account.id, status, failure.reason, now)
            elif mode not in own:
                continue  # a mode asked only to tell the tier: its refusal says nothing of the account
            log.info("quota refresh of %s failed on %s: %s", account.id, mode, failure.kind.value)
            return f"failed:{failure.kind.value}"
        totals[mode] = quota.total
        if quota.total > 0 or mode in own:  # a mode the account lacks and never had stays out
            await store.set_quota(account.id, mode, quota)
    await _apply_tier(store, account, detect_tier(totals))
    return "refreshed"


async def _apply_tier(store: AccountStore, account: Account, detected: Tier | None) -> None:
    """Record the tier the totals revealed, unless an operator set the tier (theirs wins)."""
    if detected is None:
        return
    if account.tier_source is TierSource.OPERATOR:
        if detected is not account.tier:
            log.info(
                "%s: the upstream's quotas say %s; kept %s, set by an operator",
                account.id,
                detected.value,
                account.tier.value,
            )
        return
    if detected is not account.tier or account.tier_source is not TierSource.DETECTED:
        if detected is not account.tier:
            log.info("%s: tier %s detected (was %s)", account.id, detected.value, account.tier.value)
        await store.update(account.id, AccountUpdate(tier=detected, tier_source=TierSource.DETECTED))


async def refresh_due(
    store: RefreshableStore,
    fetch: FetchRateLimits,
    now: float,
    *,
    limit: int = 200,
    concurrency: int = 4,
    intervals: Mapping[str, float] | None = None,
) -> RefreshReport:
    """Refresh the accounts whose scheduled refresh is due, `concurrency` at a time."""
    due = await store.due_for_refresh(now=now, limit=limit)
    report = RefreshReport(due=len(due))
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(account: Account) -> None:
        async with gate:
            result = await refresh_account(store, fetch, account, now, intervals=intervals)
        report.accounts[account.id] = result
        if result == "refreshed":
            report.refreshed += 1
        elif result == "skipped":
            report.skipped += 1
        else:
            report.failed += 1

    await asyncio.gather(*(one(account) for account in due))
    return report
