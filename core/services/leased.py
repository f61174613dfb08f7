"""Run one upstream media call on a leased account, with failover, like the chat service does.

`Leaser.run(model, call)` leases an account of the model's tiers for its mode (one quota unit
reserved per upstream request), awaits `call(lease)`, and releases with the outcome:

    success                      -> SUCCESS
    retryable UpstreamFailure    -> the next account is leased (budget: retry_budget); an account
                                    the outcome takes out (expired, blocked, rate limited) is
                                    released first, others are held until the end so that the
                                    store prefers another account
    other UpstreamFailure        -> its outcome; its client error is raised
    anything else / cancellation -> CANCELLED (refunded when nothing was sent)

A failure raised after the upstream started working (`Started` wrapper) is not refunded.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from core.accounts import Lease, Outcome, OutcomeKind
from core.catalog import Model
from core.errors import GatewayError
from core.ports import AccountStore
from core.protocol.classify import UpstreamFailure
from core.services.pool import no_account_error, release_shielded
from core.settings import Settings

T = TypeVar("T")
log = logging.getLogger("grokgate.media")
_TAKES_ACCOUNT_OUT = (OutcomeKind.EXPIRED, OutcomeKind.BLOCKED, OutcomeKind.RATE_LIMITED)


class Started(Exception):
    """Wraps an `UpstreamFailure` that happened after the upstream began the work (no refund)."""

    def __init__(self, failure: UpstreamFailure) -> None:
        super().__init__(str(failure))
        self.failure = failure


class Leaser:
    """Args:
    settings: retry budget, lease ttl, cooldown.
    store: the account pool.
    clock: seconds since the epoch.
    """

    def __init__(self, settings: Settings, store: AccountStore, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock

    async def run(self, model: Model, call: Callable[[Lease], Awaitable[T]]) -> T:
        last: UpstreamFailure | None = None
        tried: list[tuple[Lease, Outcome]] = []
        try:
            for attempt in range(1 + self.settings.retry_budget):
                lease = await self.store.lease(
                    mode=model.mode, tiers=model.tiers, now=self.clock(), ttl=self.settings.lease_ttl
                )
                if lease is None:
                    if last is not None:
                        break
                    raise await self.no_account(model)
                if any(held.account_id == lease.account_id for held, _ in tried):
                    await self.release(lease, Outcome(OutcomeKind.CANCELLED, refund=True))
                    break
                try:
                    result = await call(lease)
                except (UpstreamFailure, Started) as exc:
                    started = isinstance(exc, Started)
                    failure = exc.failure if isinstance(exc, Started) else exc
                    last = failure
                    log.info(
                        "%s attempt %d on %s failed: %s", model.id, attempt + 1, lease.account_id, failure
                    )
                    outcome = failure.outcome(self.clock(), self.settings.cooldown_seconds, started=started)
                    if not failure.retryable or started:
                        await self.release(lease, outcome)
                        raise failure.to_error() from None
                    if outcome.kind in _TAKES_ACCOUNT_OUT:
                        await self.release(lease, outcome)  # now the store cannot pick it again
                    else:
                        tried.append((lease, outcome))  # held, so the store prefers another
                    continue
                except BaseException:
                    await self.release(lease, Outcome(OutcomeKind.CANCELLED))
                    raise
                await self.release(lease, Outcome.success())
                return result
        finally:
            for held, outcome in tried:
                await self.release(held, outcome)
        assert last is not None
        raise last.to_error()

    async def no_account(self, model: Model) -> GatewayError:
        return await no_account_error(self.store, model)

    async def release(self, lease: Lease, outcome: Outcome) -> None:
        """Release even while the calling task is being cancelled."""
        await release_shielded(self.store, lease, outcome, self.clock())
