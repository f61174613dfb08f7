"""SQLite plumbing shared by the embedded stores: one way to open a file, one way to transact,
and `SQLiteFile`, which runs a store's transactions off the event loop (or on it, when that is
cheaper) and turns SQLite's errors into `StoreUnavailable`."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from core.errors import StoreUnavailable

T = TypeVar("T")

CHECKPOINT_EVERY = 1000  # inline commits between two WAL checkpoints on the worker thread


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


class SQLiteFile:
    """One store's access to one SQLite file: `run(fn)` is one IMMEDIATE transaction.

    Transactions run on a worker thread whose connection waits for the write lock (busy
    timeout) and is opened on first use: `schema` applied, then `prepare(db)` (a migration).
    With `inline`, once that has happened, `run` first tries the transaction on the calling
    thread through a second connection that never waits (`try_now`): a lease is tens of µs of
    index work, cheaper than the thread hop. `name` goes into the `StoreUnavailable` message.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        name: str,
        thread: str = "sqlite",
        schema: str = "",
        prepare: Callable[[sqlite3.Connection], object] | None = None,
        foreign_keys: bool = False,
        page_size: int = 0,
        inline: bool = False,
    ) -> None:
        self.path = str(path)
        self._name = name
        self._schema = schema
        self._prepare = prepare
        self._foreign_keys = foreign_keys
        self._page_size = page_size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread)
        self._db: sqlite3.Connection | None = None
        # The loop's own connection: no busy wait, no autocheckpoint (see `try_now`).
        self._fast: sqlite3.Connection | None = None
        self._fast_lock = threading.Lock()
        self._inline = inline and self.path != ":memory:"  # a second :memory: connection is another database
        self._ready = False  # the worker's connection has prepared the file
        self._commits = 0
        self._checkpointing = False  # a checkpoint is queued on the worker: don't run inline

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(f"The {self._name} is unavailable ({type(exc).__name__}).")

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = open_db(self.path, self._schema, foreign_keys=self._foreign_keys, page_size=self._page_size)
            if self._prepare is not None:
                self._prepare(db)
            self._db = db
        return self._db

    def _fast_db(self) -> sqlite3.Connection:
        if self._fast is None:
            db = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA synchronous=NORMAL")  # per connection, as the worker's
            if self._foreign_keys:
                db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints (fsync) run on the worker
            self._fast = db
        return self._fast

    def try_now(self, fn: Callable[[sqlite3.Connection], T]) -> tuple[bool, T | None]:
        """Run the transaction on the calling thread if the write lock is free right now.

        With any wait (another process or the worker's connection holds the lock, the file is
        not prepared yet, a checkpoint is queued) it rolls back and returns (False, None): the
        caller then uses `run`, which waits with the usual busy timeout. Same transaction, same
        semantics; only where it runs differs.
        """
        if not (self._inline and self._ready) or self._checkpointing:
            return False, None
        if not self._fast_lock.acquire(blocking=False):
            return False, None  # another thread is using the loop's connection
        try:
            db = self._fast_db()
            try:
                result = transaction(db, fn)
            except sqlite3.OperationalError as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if "locked" in str(exc) or "busy" in str(exc):
                    return False, None
                raise
        except (sqlite3.Error, OSError) as exc:
            raise self._unavailable(exc) from exc
        finally:
            self._fast_lock.release()
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0:
            self._checkpointing = True
            self._executor.submit(self._checkpoint)
        return True, result

    def _checkpoint(self) -> None:
        """Copy the WAL into the database and have the next writer start it over.

        Meanwhile this process's operations queue behind it on the worker: a checkpoint that
        races the loop's commits never finds the log fully copied, and the log then only grows
        (each commit appending pages instead of overwriting them, which costs more).
        """
        try:
            with contextlib.suppress(sqlite3.Error):
                self._connect().execute("PRAGMA wal_checkpoint(RESTART)")
        finally:
            self._checkpointing = False

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(db)` in one IMMEDIATE transaction; `StoreUnavailable` if the file cannot be used."""
        done, result = self.try_now(fn)
        if done:
            return result  # type: ignore[return-value]

        def call() -> T:
            return transaction(self._connect(), fn)

        try:
            result = await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except (sqlite3.Error, OSError) as exc:
            raise self._unavailable(exc) from exc
        self._ready = True
        return result

    async def aclose(self) -> None:
        self._ready = False
        with self._fast_lock:
            if self._fast is not None:
                self._fast.close()
                self._fast = None

        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=False)
