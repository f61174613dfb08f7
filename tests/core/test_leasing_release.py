"""`Leasing.release`: the on-the-spot path and the shielded one."""

from __future__ import annotations

import asyncio

from core.accounts import Lease, Outcome
from core.catalog import Tier
from core.services.leasing import Leasing
from core.settings import Settings

LEASE = Lease("lease_1", "acct", "tok", Tier.BASIC, "fast", 100.0)


class Store:
    def __init__(self, nowait: bool | None) -> None:
        self.nowait = nowait
        self.calls: list[str] = []
        self.gate = asyncio.Event()

    def release_nowait(self, lease: Lease, outcome: Outcome, now: float) -> bool | None:
        self.calls.append("nowait")
        return self.nowait

    async def release(self, lease: Lease, outcome: Outcome, now: float) -> bool:
        self.calls.append("release")
        await self.gate.wait()
        self.calls.append("released")
        return True


def leasing(store: Store) -> Leasing:
    return Leasing(Settings(), store, lambda: 1.0)  # type: ignore[arg-type]


async def test_a_release_done_on_the_spot_is_not_repeated() -> None:
    store = Store(nowait=True)
    await leasing(store).release(LEASE, Outcome.success())
    assert store.calls == ["nowait"]


async def test_a_release_that_must_wait_survives_the_callers_cancellation() -> None:
    store = Store(nowait=None)
    caller = asyncio.ensure_future(leasing(store).release(LEASE, Outcome.success()))
    await asyncio.sleep(0.01)
    caller.cancel()
    await asyncio.sleep(0.01)
    assert caller.cancelled()
    store.gate.set()
    await asyncio.sleep(0.01)
    assert store.calls == ["nowait", "release", "released"]
