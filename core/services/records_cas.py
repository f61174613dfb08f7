"""Read-modify-write of one record, retried on a lost compare-and-set (another instance wrote it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.errors import StoreUnavailable
from core.ports import RecordStore

TRIES = 50


async def update(
    records: RecordStore,
    key: str,
    change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
    *,
    now: float,
    ttl: float | None = None,
) -> dict[str, Any] | None:
    """Apply `change` to the record (None when absent) until the write wins; returns what was
    written. `change` returning None leaves the record as it is (nothing written)."""
    for _ in range(TRIES):
        value, version = await records.read(key, now=now)
        new = change(value)
        if new is None:
            return value
        if await records.write(key, new, version=version, now=now, ttl=ttl):
            return new
    raise StoreUnavailable(f"The record {key.split(':', 1)[0]!r} is too contended to update.")
