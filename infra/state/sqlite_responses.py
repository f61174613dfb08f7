"""`ResponseStore` on SQLite: a `responses` table in the account store's file. Expired rows are
invisible at once and pruned a few at a time by later writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core.ports import StoredResponse
from infra.sqlite_db import SQLiteFile
from infra.state.response_codec import pack_async, unpack_async

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
        self._file = SQLiteFile(path, name="response store", thread="sqlite-responses", schema=SCHEMA)
        self._run = self._file.run

    async def put(self, stored: StoredResponse) -> None:
        blob = await pack_async(stored)

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
        return None if blob is None else await unpack_async(blob)

    async def delete(self, response_id: str, *, owner: str, now: float) -> bool:
        def go(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "DELETE FROM responses WHERE id = ? AND owner = ? AND expires_at > ?",
                (response_id, owner, now),
            )
            return cursor.rowcount > 0

        return await self._run(go)

    async def aclose(self) -> None:
        await self._file.aclose()
