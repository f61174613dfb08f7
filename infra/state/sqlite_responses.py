"""`ResponseStore` on SQLite: a `responses` table in the account store's file. Expired rows are
invisible at once and pruned a few at a time by later writes."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from core.errors import StoreUnavailable
from core.ports import StoredResponse
from infra.sqlite_db import open_db, transaction
from infra.state.response_codec import pack, unpack

T = TypeVar("T")
PRUNE = 64  # expired rows removed per write

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL,
    body BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS responses_expiry ON responses (expires_at);
"""


class SQLiteResponseStore:
    """Stored responses in the SQLite file at `path` (usually the account store's)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-responses")
        self._db: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._db is None:
                self._db = open_db(self.path, SCHEMA)
            return transaction(self._db, fn)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"The response store is unavailable ({type(exc).__name__}).") from exc

    async def put(self, stored: StoredResponse) -> None:
        blob = pack(stored)

        def go(db: sqlite3.Connection) -> None:
            db.execute(
                "DELETE FROM responses WHERE id IN "
                "(SELECT id FROM responses WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)",
                (stored.created_at, PRUNE),
            )
            db.execute(
                "INSERT OR REPLACE INTO responses (id, owner, expires_at, body) VALUES (?, ?, ?, ?)",
                (stored.id, stored.owner, stored.expires_at, blob),
            )

        await self._run(go)

    async def get(self, response_id: str, *, owner: str, now: float) -> StoredResponse | None:
        def go(db: sqlite3.Connection) -> bytes | None:
            row = db.execute(
                "SELECT body FROM responses WHERE id = ? AND owner = ? AND expires_at > ?",
                (response_id, owner, now),
            ).fetchone()
            return None if row is None else bytes(row[0])

        blob = await self._run(go)
        return None if blob is None else unpack(blob)

    async def delete(self, response_id: str, *, owner: str, now: float) -> bool:
        def go(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "DELETE FROM responses WHERE id = ? AND owner = ? AND expires_at > ?",
                (response_id, owner, now),
            )
            return cursor.rowcount > 0

        return await self._run(go)

    async def close(self) -> None:
        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=False)
