"""Media lifecycle: stored images and videos expire after `media_retention` seconds, and an
optional cap (`media_max_bytes`) evicts the oldest files first.

`sweep` is what the scheduled upkeep runs over a store's inventory (the local folder, or a
bucket without a lifecycle rule of its own: a bucket whose rule already expires the files is
left to S3). `expired` is what the routes ask before serving a file: a link to expired media
answers 410 even before the sweep has removed it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from core.errors import NotFound
from core.ports import MediaInventory

SCAN_LIMIT = 100_000


class MediaGone(NotFound):
    """Stored media that expired (410, in the OpenAI envelope)."""

    status = 410
    default_code = "media_expired"


@dataclass(frozen=True, slots=True)
class SweepReport:
    scanned: int = 0
    expired: int = 0
    evicted: int = 0
    kept_bytes: int = 0
    skipped: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def expired(created_at: float, *, now: float, retention: float) -> bool:
    return bool(retention) and created_at > 0 and created_at + retention <= now


async def sweep(store: MediaInventory, *, now: float, retention: float, max_bytes: int) -> SweepReport:
    """Delete what outlived the retention, then the oldest files while the total exceeds the cap."""
    items, _count, _total = await store.inventory(limit=SCAN_LIMIT)  # newest first
    gone = 0
    kept = []
    for item in items:
        if expired(item.created_at, now=now, retention=retention):
            gone += await store.delete(item.id)
        else:
            kept.append(item)
    evicted = 0
    total = sum(item.size for item in kept)
    if max_bytes:
        for item in reversed(kept):  # the oldest first
            if total <= max_bytes:
                break
            if await store.delete(item.id):
                evicted += 1
                total -= item.size
    return SweepReport(scanned=len(items), expired=gone, evicted=evicted, kept_bytes=total)
