"""The usage ledger: per key, model and UTC day, what the clients were served and told.

Entries are merged in the process and written within a second (`flush_seconds`): one record per
key and day would otherwise be written by every concurrent request. A process killed in that
second loses its pending entries; a process shut down cleanly flushes them (`flush`).

One record per key and day (`usage:{day}:{key}`) holds, per model: requests, the input and output
tokens the client was told (the usage of the answer), answers by HTTP status, upstream failures
by kind, and requests by route. A record per day (`usage-keys:{day}`) lists the keys that have
one, so a range can be read without listing the store. Records expire after the retention.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.keys import day_of
from core.ports import RecordStore
from core.services.records_cas import update

log = logging.getLogger("grokgate.usage")
DAY = 86400
MAX_DAYS = 400
GROUPS = ("key", "model", "day")


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """One finished request, as the ledger counts it."""

    key_id: str
    model: str
    route: str
    status: int
    input_tokens: int = 0
    output_tokens: int = 0
    failure: str = ""  # the upstream failure's kind, if one ended the answer


def _add(totals: dict[str, Any], entry: UsageEntry) -> None:
    totals["requests"] = totals.get("requests", 0) + 1
    totals["input_tokens"] = totals.get("input_tokens", 0) + entry.input_tokens
    totals["output_tokens"] = totals.get("output_tokens", 0) + entry.output_tokens
    for name, label in (
        ("statuses", str(entry.status)),
        ("routes", entry.route),
        ("failures", entry.failure),
    ):
        if label:
            bucket = totals.setdefault(name, {})
            bucket[label] = bucket.get(label, 0) + 1


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for name in ("requests", "input_tokens", "output_tokens"):
        into[name] = into.get(name, 0) + int(other.get(name, 0))
    for name in ("statuses", "routes", "failures"):
        bucket = into.setdefault(name, {})
        for label, n in (other.get(name) or {}).items():
            bucket[label] = bucket.get(label, 0) + int(n)


class UsageLedger:
    """Args:
    records: the store's records.
    clock: seconds since the epoch.
    retention_days: how long a day's records are kept.
    flush_seconds: how long a finished request's entry may wait in this process before it is
        written (entries of the same key and day are merged into one write: a per-request write
        would make one record the store's hottest, under every concurrent request).
    """

    def __init__(
        self,
        records: RecordStore,
        *,
        clock: Callable[[], float],
        retention_days: int,
        flush_seconds: float = 1.0,
    ) -> None:
        self.records = records
        self.clock = clock
        self.ttl = retention_days * DAY
        self.flush_seconds = flush_seconds
        self._indexed: set[tuple[str, str]] = set()  # (day, key) this process has put in a day's index
        self._pending: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}  # (day, key) -> model -> totals
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None

    async def record(self, entry: UsageEntry) -> None:
        """Count one request; written within `flush_seconds` (at once when that is 0)."""
        day = day_of(self.clock())
        models = self._pending.setdefault((day, entry.key_id), {})
        _add(models.setdefault(entry.model or "-", {}), entry)
        if self.flush_seconds <= 0:
            await self.flush()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.flush_seconds, self._flush_soon)

    def _flush_soon(self) -> None:
        self._timer = None
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush_logged())

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception as exc:  # the store is down: the entries wait for the next flush
            log.warning("usage ledger not written yet: %s", exc)
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self.flush_seconds, self._flush_soon)

    async def flush(self) -> None:
        """Write every pending entry (merged per key and day); what fails stays pending."""
        pending, self._pending = self._pending, {}
        now = self.clock()
        try:
            while pending:
                (day, key_id), models = next(iter(pending.items()))
                await self._write(day, key_id, models, now)
                del pending[(day, key_id)]
        finally:
            for (day, key_id), models in pending.items():  # put back what was not written
                into = self._pending.setdefault((day, key_id), {})
                for model, totals in models.items():
                    _merge(into.setdefault(model, {}), totals)

    async def _write(self, day: str, key_id: str, models: dict[str, dict[str, Any]], now: float) -> None:
        def add(value: dict[str, Any] | None) -> dict[str, Any]:
            value = value or {"models": {}}
            for model, totals in models.items():
                _merge(value["models"].setdefault(model, {}), totals)
            return value

        await update(self.records, f"usage:{day}:{key_id}", add, now=now, ttl=self.ttl)
        if (day, key_id) not in self._indexed:

            def index(value: dict[str, Any] | None) -> dict[str, Any] | None:
                keys = list((value or {}).get("keys") or [])
                if key_id in keys:
                    return None
                return {"keys": [*keys, key_id]}

            await update(self.records, f"usage-keys:{day}", index, now=now, ttl=self.ttl)
            if len(self._indexed) > 10_000:
                self._indexed.clear()
            self._indexed.add((day, key_id))

    async def tokens_today(self, key_id: str) -> int:
        totals = await self.today(key_id)
        return int(totals.get("input_tokens", 0)) + int(totals.get("output_tokens", 0))

    async def today(self, key_id: str) -> dict[str, Any]:
        """Today's totals of one key over every model (this process's pending entries included)."""
        now = self.clock()
        day = day_of(now)
        value, _ = await self.records.read(f"usage:{day}:{key_id}", now=now)
        totals: dict[str, Any] = {}
        for model in ((value or {}).get("models") or {}).values():
            _merge(totals, model)
        for model in self._pending.get((day, key_id), {}).values():
            _merge(totals, model)
        return totals

    async def query(self, start: float, end: float, group_by: str) -> list[dict[str, Any]]:
        """Totals from the day of `start` to the day of `end` (both included), one row per group
        (this process's pending entries written first; other instances' follow within their flush)."""
        await self.flush()
        now = self.clock()
        first, last = int(start // DAY), int(end // DAY)
        if last - first >= MAX_DAYS:
            first = last - MAX_DAYS + 1
        rows: dict[str, dict[str, Any]] = {}
        for n in range(first, last + 1):
            day = day_of(n * DAY)
            index, _ = await self.records.read(f"usage-keys:{day}", now=now)
            for key_id in (index or {}).get("keys") or []:
                value, _ = await self.records.read(f"usage:{day}:{key_id}", now=now)
                for model, totals in ((value or {}).get("models") or {}).items():
                    group = {"key": key_id, "model": model, "day": day}[group_by]
                    row = rows.setdefault(group, {group_by: group})
                    _merge(row, totals)
        return [rows[g] for g in sorted(rows)]
