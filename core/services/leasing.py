"""The one failover loop every leased upstream call runs in: chat answers, images, videos.

`Leasing.run(model, call)` leases an account of the model's tiers for its mode (one quota unit
reserved per upstream request), awaits `call(lease)`, and releases the lease with the outcome:

    success                      -> SUCCESS (the caller's result is returned)
    retryable UpstreamFailure    -> the next account is leased, within `retry_budget` retries
    other UpstreamFailure        -> its outcome; its client error is raised
    `Started(failure)`           -> its outcome without a refund; its client error is raised
    anything else / cancellation -> CANCELLED

An account the failure takes out of rotation (expired, blocked, rate limited) is released at
once, so the store cannot pick it again; one that stays usable (challenge, transient) is held
until the loop ends, so the next lease prefers another account of the tiers. An account already
tried is handed straight back (refunded) and the retries end. When the last word is a rate
limit, the client's error carries a `Retry-After`: the upstream's, else the cooldown setting.

A caller that returns a stream (chat) does its own hold inside `call`: it reads until the first
meaningful event, so a failure before anything was sent still fails over here. It runs with
`keep=True`: the stream holds the lease after that and releases it with `release`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from core.accounts import AccountStatus, Lease, Outcome, OutcomeKind
from core.catalog import Model
from core.errors import GatewayError, Overloaded, RateLimited
from core.ports import AccountStore
from core.protocol.classify import Kind, UpstreamFailure
from core.settings import Settings

T = TypeVar("T")
log = logging.getLogger("grokgate.leasing")
_LEAVES_ROTATION = (OutcomeKind.EXPIRED, OutcomeKind.BLOCKED, OutcomeKind.RATE_LIMITED)
# Releases in flight: a reference keeps a shielded task alive after its caller was cancelled.
_background: set[asyncio.Task[Any]] = set()


class Started(Exception):
    """Wraps an `UpstreamFailure` that happened after the upstream began the work: the unit was
    spent (no refund) and the work is not sent to another account."""

    def __init__(self, failure: UpstreamFailure) -> None:
        super().__init__(str(failure))
        self.failure = failure


class Leasing:
    """Args:
    settings: retry budget, lease ttl, cooldown (the default Retry-After of a rate limit).
    store: the account pool.
    clock: seconds since the epoch.
    upstream: told of an in-band anti-bot refusal, which its adapter could not see, through its
        `note_failure` if it has one (the REST client's next signed value is then fresh).
    """

    def __init__(
        self,
        settings: Settings,
        store: AccountStore,
        clock: Callable[[], float],
        *,
        upstream: object = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.upstream = upstream

    async def run(self, model: Model, call: Callable[[Lease], Awaitable[T]], *, keep: bool = False) -> T:
        """`call(lease)` on one account after another until one succeeds; raises a
        `GatewayError` when none can serve. The lease of the success is released as SUCCESS,
        unless `keep`: then the result holds it (a stream still being read) and releases it."""
        last: UpstreamFailure | None = None
        held: list[tuple[Lease, Outcome]] = []
        seen: set[str] = set()
        try:
            for attempt in range(1 + self.settings.retry_budget):
                lease = await self.store.lease(
                    mode=model.mode, tiers=model.tiers, now=self.clock(), ttl=self.settings.lease_ttl
                )
                if lease is None:
                    if last is not None:
                        break
                    raise await self.no_account(model)
                if lease.account_id in seen:
                    await self.release(lease, Outcome(OutcomeKind.CANCELLED, refund=True))
                    break
                try:
                    result = await call(lease)
                except (UpstreamFailure, Started) as exc:
                    started = isinstance(exc, Started)
                    failure = exc.failure if isinstance(exc, Started) else exc
                    last = failure
                    log.info(
                        "%s attempt %d on %s failed: %s",
                        model.id,
                        attempt + 1,
                        lease.account_id,
                        failure.reason,
                    )
                    if failure.kind is Kind.ANTI_BOT:
                        await self._note(failure)
                    outcome = failure.outcome(self.clock(), self.settings.cooldown_seconds, started=started)
                    if started or not failure.retryable:
                        await self.release(lease, outcome)
                        raise self.error(failure) from None
                    if outcome.kind in _LEAVES_ROTATION:
                        await self.release(lease, outcome)  # now the store cannot pick it again
                    else:
                        held.append((lease, outcome))  # held, so the store prefers another
                    seen.add(lease.account_id)
                    continue
                except BaseException:
                    await self.release(lease, Outcome(OutcomeKind.CANCELLED))
                    raise
                if not keep:
                    await self.release(lease, Outcome.success())
                return result
        finally:
            for lease, outcome in held:
                await self.release(lease, outcome)
        assert last is not None
        raise self.error(last)

    async def _note(self, failure: UpstreamFailure) -> None:
        note = getattr(self.upstream, "note_failure", None)  # not part of the port: a fake has none
        if note is not None:
            await note(failure)

    def error(self, failure: UpstreamFailure) -> GatewayError:
        """The client's error when `failure` is the last word (a rate limit says when to retry)."""
        return failure.to_error(self.settings.cooldown_seconds)

    async def no_account(self, model: Model) -> GatewayError:
        """429 when accounts of the tiers exist but are cooling or used up; 503 when none is active."""
        tiers = "/".join(t.value for t in model.tiers)
        for status in (AccountStatus.ACTIVE, AccountStatus.COOLING):
            for tier in model.tiers:
                page = await self.store.list(status=status, tier=tier, limit=1)
                if page.items:
                    return RateLimited(
                        f"No account of tier {tiers} has quota left for mode '{model.mode}' "
                        f"(model {model.id}): every one is cooling down or used up. Try again later.",
                        code="no_account_available",
                        headers={"retry-after": "30"},
                    )
        return Overloaded(
            f"No usable account of tier {tiers} for mode '{model.mode}' (model {model.id}): "
            "the pool has none that is active (all expired, blocked, disabled, or none imported).",
            code="no_account_available",
        )

    async def release(self, lease: Lease, outcome: Outcome) -> None:
        """Release the lease; a cancelled caller still sees it through, a store fault is only logged.

        A store that can release on the spot (`release_nowait`, the embedded store when its write
        lock is free) does so: nothing is awaited, so nothing can cut it short. Otherwise the
        release runs in a task of its own that the caller waits on through a shield.
        """
        store = self.store
        now = self.clock()
        try:
            nowait = getattr(store, "release_nowait", None)
            if nowait is not None and nowait(lease, outcome, now) is not None:
                return
            task = asyncio.ensure_future(store.release(lease, outcome, now))
            _background.add(task)
            task.add_done_callback(_background.discard)
            await asyncio.shield(task)
        except asyncio.CancelledError:
            raise
        except GatewayError as exc:
            log.warning("release of %s failed: %s", lease.account_id, exc.message)
