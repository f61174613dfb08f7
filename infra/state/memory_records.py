"""A `RecordStore` in process memory (core.ports), for an upstream client built without a shared
store (a benchmark, a one-off script): the same semantics, nothing shared."""

from __future__ import annotations

from typing import Any


class MemoryRecords:
    def __init__(self) -> None:
        self._data: dict[str, tuple[dict[str, Any], int, float]] = {}

    async def read(self, key: str, *, now: float) -> tuple[dict[str, Any] | None, int]:
        entry = self._data.get(key)
        if entry is None or entry[2] <= now:
            return None, 0
        return dict(entry[0]), entry[1]

    async def write(
        self, key: str, value: dict[str, Any], *, version: int, now: float, ttl: float | None = None
    ) -> bool:
        if (await self.read(key, now=now))[1] != version:
            return False
        self._data[key] = (dict(value), version + 1, now + ttl if ttl is not None else float("inf"))
        return True

    async def count(self, key: str, *, now: float, window: float) -> int:
        value, version = await self.read(key, now=now)
        n = int((value or {}).get("n", 0)) + 1
        entry = self._data.get(key)
        expires = entry[2] if value is not None and entry is not None else now + window
        self._data[key] = ({"n": n}, version + 1, expires)
        return n

    async def aclose(self) -> None:
        pass
