"""SQLite plumbing shared by the embedded stores: one way to open a file, one way to transact."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from core.errors import StoreUnavailable

T = TypeVar("T")


def open_db(path: str, schema: str, *, foreign_keys: bool = False, page_size: int = 0) -> sqlite3.Connection:
    """A WAL connection in autocommit mode (transactions are explicit), the schema applied.

    `page_size` applies to a file created now; an existing file keeps the size it has.
    """
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    if page_size:
        db.execute(f"PRAGMA page_size={int(page_size)}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    if foreign_keys:
        db.execute("PRAGMA foreign_keys=ON")
    db.executescript(schema)
    return db


def transaction(db: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run `fn` in one IMMEDIATE transaction: the write lock is taken up front, so a read-then-write
    inside `fn` cannot interleave with another writer."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = fn(db)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return result


class SQLiteTable:
    """A store kept in one SQLite file on one worker thread: each `_run(fn)` is one IMMEDIATE
    transaction on the thread's connection (opened with `SCHEMA` on first use). Subclasses set
    `SCHEMA`, `NAME` (for the error message) and `THREAD`."""

    SCHEMA = ""
    NAME = "store"
    THREAD = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.THREAD)
        self._db: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._db is None:
                self._db = open_db(self.path, self.SCHEMA)
            return transaction(self._db, fn)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"The {self.NAME} is unavailable ({type(exc).__name__}).") from exc

    async def close(self) -> None:
        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=False)
