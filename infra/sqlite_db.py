"""SQLite plumbing shared by the embedded stores: one way to open a file, one way to transact."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

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
