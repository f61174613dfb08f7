"""Pure account policy: which candidate a lease takes, what a lease, an outcome and the passing
of time do to an account.

Stores that compute the new state in Python (SQLite for outcomes, DynamoDB for everything, before
its conditional write) call these directly; what a store does in its own language (SQLite's SQL
fast paths, Redis Lua) implements the same rules, and the contract suite holds them to it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

from core.accounts import Account, AccountStatus, Outcome, OutcomeKind, Quota
from core.catalog import Tier


@dataclass(frozen=True, slots=True)
class Candidate:
    """What selection needs to know of one account for one mode."""

    account_id: str
    tier: Tier
    remaining: int
    in_flight: int
    last_used_at: float


def is_usable(account: Account, now: float) -> bool:
    if account.status is AccountStatus.ACTIVE:
        return True
    return account.status is AccountStatus.COOLING and account.cooling_until <= now


def rank_key(candidate: Candidate) -> tuple[int, int, int, float]:
    """Lower sorts first: lowest tier, most quota left, fewest in flight, least recently used."""
    return (candidate.tier.rank, -candidate.remaining, candidate.in_flight, candidate.last_used_at)


def candidate(account: Account, mode: str, now: float) -> Candidate | None:
    """`account` as a candidate for a lease of `mode` at `now`: None unless it is ACTIVE with
    quota left in that mode (call `upkeep` first for an account whose cooling may have ended)."""
    quota = account.quotas.get(mode)
    if account.status is not AccountStatus.ACTIVE or quota is None:
        return None
    remaining = quota.current(now).remaining
    if remaining <= 0:
        return None
    return Candidate(account.id, account.tier, remaining, account.in_flight, account.last_used_at)


def choose(
    candidates: Sequence[Candidate], rng: random.Random | None = None, *, contended: bool = False
) -> Candidate | None:
    """The best candidate with quota left; ties broken at random so instances spread out.

    `contended` (the last try lost a race): any candidate with quota left, at random, since
    instances that all chase the same best keep colliding."""
    live = [c for c in candidates if c.remaining > 0]
    if not live:
        return None
    if contended:
        return (rng or random).choice(live)
    best = min(rank_key(c) for c in live)
    tied = [c for c in live if rank_key(c) == best]
    return tied[0] if len(tied) == 1 else (rng or random).choice(tied)


def reserve(account: Account, mode: str, now: float) -> Account:
    """The account once a lease of `mode` is taken: one unit spent, one more in flight, used now."""
    quota = account.quotas[mode]
    return replace(
        account,
        quotas={**account.quotas, mode: replace(quota, remaining=quota.remaining - 1)},
        in_flight=account.in_flight + 1,
        last_used_at=now,
    )


def upkeep(account: Account, expired_leases: int, now: float) -> Account:
    """The account at `now`: `expired_leases` give their in-flight count back (their units stay
    spent), ended windows refill, ended cooling makes it ACTIVE."""
    status, cooling_until = account.status, account.cooling_until
    if status is AccountStatus.COOLING and cooling_until <= now:
        status, cooling_until = AccountStatus.ACTIVE, 0.0
    return replace(
        account,
        quotas={mode: quota.current(now) for mode, quota in account.quotas.items()},
        in_flight=max(0, account.in_flight - expired_leases),
        status=status,
        cooling_until=cooling_until,
    )


def apply_outcome(account: Account, mode: str, outcome: Outcome, now: float) -> Account:
    """The account after a released lease: status, counters, the upstream's reason."""
    quotas = dict(account.quotas)
    quota = quotas.get(mode)
    if outcome.quota is not None:
        quotas[mode] = outcome.quota
    elif outcome.refund and quota is not None:
        quotas[mode] = replace(quota, remaining=min(quota.total, quota.remaining + 1))
    in_flight = max(0, account.in_flight - 1)
    kind = outcome.kind
    if kind is OutcomeKind.SUCCESS:
        status = AccountStatus.ACTIVE if account.status is not AccountStatus.DISABLED else account.status
        return replace(
            account,
            quotas=quotas,
            in_flight=in_flight,
            status=status,
            cooling_until=0.0,
            use_count=account.use_count + 1,
            reason="" if status is AccountStatus.ACTIVE else account.reason,
        )
    failed = replace(
        account,
        quotas=quotas,
        in_flight=in_flight,
        fail_count=account.fail_count + 1,
        last_failure_at=now,
        reason=outcome.reason or kind.value,
    )
    if kind is OutcomeKind.RATE_LIMITED:
        if quota is not None:
            quotas[mode] = Quota(
                0, quota.total, quota.window_seconds, max(quota.reset_at, outcome.cooling_until)
            )
        if account.status is AccountStatus.DISABLED:
            return failed
        return replace(failed, status=AccountStatus.COOLING, cooling_until=outcome.cooling_until)
    if kind is OutcomeKind.EXPIRED:
        return replace(failed, status=AccountStatus.EXPIRED)
    if kind is OutcomeKind.BLOCKED:
        return replace(failed, status=AccountStatus.BLOCKED)
    if kind is OutcomeKind.CANCELLED:
        # The client left: nothing to hold against the account.
        return replace(account, quotas=quotas, in_flight=in_flight)
    return failed
