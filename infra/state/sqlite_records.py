"""`RecordStore` on SQLite: a `records` table in the account store's file; each call is one
IMMEDIATE transaction, so a compare-and-set or a count is atomic across processes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from infra.sqlite_db import SQLiteFile

NEVER = float("inf")

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
"""


class SQLiteRecordStore:
    """Records in the SQLite file at `path` (usually the account store's)."""

    def __init__(self, path: str | Path) -> None:
        self._file = SQLiteFile(path, name="record store", thread="sqlite-records", schema=SCHEMA)
        self._run = self._file.run

    @staticmethod
    def _current(db: sqlite3.Connection, key: str, now: float) -> tuple[str | None, int]:
        row = db.execute("SELECT value, version, expires_at FROM records WHERE key = ?", (key,)).fetchone()
        if row is None or row[2] <= now:
            return None, 0
        return row[0], row[1]

    async def read(self, key: str, *, now: float) -> tuple[dict[str, Any] | None, int]:
        raw, version = await self._run(lambda db: self._current(db, key, now))
        return (json.loads(raw) if raw is not None else None), version

    async def write(
        self, key: str, value: dict[str, Any], *, version: int, now: float, ttl: float | None = None
    ) -> bool:
        text = json.dumps(value, separators=(",", ":"))
        expires = NEVER if ttl is None else now + ttl

        def go(db: sqlite3.Connection) -> bool:
            if self._current(db, key, now)[1] != version:
                return False
            db.execute(
                "INSERT INTO records (key, value, version, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version, "
                "expires_at = excluded.expires_at",
                (key, text, version + 1, expires),
            )
            return True

        return await self._run(go)

    async def count(self, key: str, *, now: float, window: float) -> int:
        def go(db: sqlite3.Connection) -> int:
            raw, version = self._current(db, key, now)
            if raw is None:
                db.execute(
                    "INSERT OR REPLACE INTO records (key, value, version, expires_at) VALUES (?, '1', 1, ?)",
                    (key, now + window),
                )
                return 1
            db.execute(
                "UPDATE records SET value = ?, version = ? WHERE key = ?",
                (str(version + 1), version + 1, key),
            )
            return version + 1

        return await self._run(go)

    async def aclose(self) -> None:
        await self._file.aclose()
