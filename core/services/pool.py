"""What every leased upstream call shares: the error when no account can serve, and a release
that completes even while the calling task is being cancelled."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from core.accounts import AccountStatus, Lease, Outcome
from core.catalog import Model
from core.errors import GatewayError, Overloaded, RateLimited
from core.ports import AccountStore

log = logging.getLogger("grokgate.pool")
# Releases in flight: a reference keeps a shielded task alive after its caller was cancelled.
_background: set[asyncio.Task[Any]] = set()


async def no_account_error(store: AccountStore, model: Model) -> GatewayError:
    """429 when accounts of the tiers exist but are cooling or used up; 503 when none is active."""
    tiers = "/".join(t.value for t in model.tiers)
    for status in (AccountStatus.ACTIVE, AccountStatus.COOLING):
        for tier in model.tiers:
            page = await store.list(status=status, tier=tier, limit=1)
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


async def release_shielded(store: AccountStore, lease: Lease, outcome: Outcome, now: float) -> None:
    """Release the lease; a cancelled caller still sees it through, a store fault is only logged.

    A store that can release on the spot (`release_nowait`, the embedded store when its write
    lock is free) does so: nothing is awaited, so nothing can cut it short. Otherwise the release
    runs in a task of its own that the caller waits on through a shield.
    """
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
