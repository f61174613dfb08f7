"""The embedded account store's schema, and the migration of files written by earlier versions.

The version lives in `PRAGMA user_version`: 0 is a file from before versioning (a `leases`
table, a rowid `quotas` table with exact ranking copies on every row), 1 the layout below without
`accounts.tier_source`, 2 the layout below.
`migrate` runs inside one IMMEDIATE transaction, so of several processes opening an old file at
once one migrates and the others find it done.
"""

from __future__ import annotations

import sqlite3
import struct

VERSION = 2

# One lease, as kept in `accounts.leases`: its id ("lease_" + 32 hex digits) then its expiry (the
# IEEE double, big-endian, 16 hex digits). Fixed width, so SQL can cut one out by position.
LEASE_ID_LENGTH = 38
LEASE_ENTRY_LENGTH = LEASE_ID_LENGTH + 16
_DOUBLE = struct.Struct(">d")


def lease_entry(lease_id: str, expires_at: float) -> str:
    return lease_id + _DOUBLE.pack(expires_at).hex()


def lease_entries(text: str) -> list[tuple[str, float]]:
    """(id, expiry) of every lease in an `accounts.leases` value."""
    return [
        (
            text[i : i + LEASE_ID_LENGTH],
            _DOUBLE.unpack(bytes.fromhex(text[i + LEASE_ID_LENGTH : i + LEASE_ENTRY_LENGTH]))[0],
        )
        for i in range(0, len(text), LEASE_ENTRY_LENGTH)
    ]


ACCOUNTS = """
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    tier TEXT NOT NULL,
    status TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]',
    in_flight INTEGER NOT NULL DEFAULT 0,
    cooling_until REAL NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    last_used_at REAL NOT NULL DEFAULT 0,
    last_failure_at REAL NOT NULL DEFAULT 0,
    use_count INTEGER NOT NULL DEFAULT 0,
    fail_count INTEGER NOT NULL DEFAULT 0,
    -- the leases held on the account, `lease_entry` after entry
    leases TEXT NOT NULL DEFAULT '',
    tier_source TEXT NOT NULL DEFAULT 'assumed'
);
CREATE INDEX accounts_cooling ON accounts (status, cooling_until);
"""

QUOTAS = """
CREATE TABLE quotas (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    mode TEXT NOT NULL,
    remaining INTEGER NOT NULL,
    total INTEGER NOT NULL,
    window_seconds INTEGER NOT NULL,
    reset_at REAL NOT NULL,
    -- Copies of account fields, so that one index serves selection. `usable` and `tier_rank`
    -- are exact; `in_flight` and `last_used_at` are lower bounds of the account's: a lease sets
    -- them on its mode's row only (to the figures the account will have once it is released).
    usable INTEGER NOT NULL,
    tier_rank INTEGER NOT NULL,
    in_flight INTEGER NOT NULL DEFAULT 0,
    last_used_at REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, mode)
) WITHOUT ROWID;
CREATE INDEX quotas_pick ON quotas (mode, usable, tier_rank, remaining DESC, in_flight, last_used_at);
CREATE INDEX quotas_reset ON quotas (reset_at);
"""

REFRESH = """
CREATE TABLE IF NOT EXISTS refresh (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    refresh_at REAL NOT NULL DEFAULT 0,
    refreshed_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refresh_due ON refresh (refresh_at);
"""

# Lower bounds of when upkeep is next due, one per kind: lease expiry, end of cooling, end of a
# window. A lease sweeps only the kinds whose time has come, then sets them exactly again.
UPKEEP = """
CREATE TABLE upkeep (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    leases_due REAL NOT NULL,
    cooling_due REAL NOT NULL,
    reset_due REAL NOT NULL
);
INSERT INTO upkeep VALUES (0, 0, 0, 0);
"""

# Whatever changes an account's status, or lowers its in-flight count or last use, brings the
# copies on its quota rows back in step: `usable` exact, the others lower bounds again. Rows
# already in step are not written; a lease (both only grow) does not run the body at all.
RANK_COPIES = """
CREATE TRIGGER quotas_rank_copies AFTER UPDATE OF status, in_flight, last_used_at ON accounts
WHEN new.status != old.status OR new.in_flight < old.in_flight OR new.last_used_at < old.last_used_at
BEGIN
    UPDATE quotas SET
        usable = (new.status = 'active'),
        in_flight = MIN(in_flight, new.in_flight),
        last_used_at = MIN(last_used_at, new.last_used_at)
    WHERE account_id = new.id
        AND (usable != (new.status = 'active') OR in_flight > new.in_flight OR last_used_at > new.last_used_at);
END;
"""

QUOTA_COLUMNS = (
    "account_id, mode, remaining, total, window_seconds, reset_at, usable, tier_rank, in_flight, last_used_at"
)


def migrate(db: sqlite3.Connection) -> None:
    """Bring the file to `VERSION` (call inside an IMMEDIATE transaction)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == VERSION:
        return
    if version > VERSION:
        raise sqlite3.DatabaseError(
            f"account store file is version {version}, newer than this code ({VERSION})"
        )
    exists = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='accounts'").fetchone()
    if not exists:
        statements = [ACCOUNTS, QUOTAS, REFRESH, UPKEEP, RANK_COPIES]
    elif version == 0:
        statements = [*_from_v0(db), V1_TO_V2]
    else:
        statements = [V1_TO_V2]
    for script in statements:
        for statement in _split(script):
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {VERSION}")


# v2: where the tier came from (an operator's tier is never changed by detection).
V1_TO_V2 = "ALTER TABLE accounts ADD COLUMN tier_source TEXT NOT NULL DEFAULT 'assumed';"


def _from_v0(db: sqlite3.Connection) -> list[str]:
    """Leases move onto their accounts; quotas become a WITHOUT ROWID table (same rows)."""
    db.execute("ALTER TABLE accounts ADD COLUMN leases TEXT NOT NULL DEFAULT ''")
    held: dict[str, str] = {}
    for lease_id, account_id, expires_at in db.execute(
        "SELECT id, account_id, expires_at FROM leases ORDER BY expires_at"
    ).fetchall():
        if len(lease_id) == LEASE_ID_LENGTH and lease_id.startswith("lease_"):
            held[account_id] = held.get(account_id, "") + lease_entry(lease_id, expires_at)
        else:  # not a lease this code could release: give its in-flight count back now
            db.execute("UPDATE accounts SET in_flight = MAX(0, in_flight - 1) WHERE id = ?", (account_id,))
    db.executemany("UPDATE accounts SET leases = ? WHERE id = ?", [(text, a) for a, text in held.items()])
    return [
        "DROP TABLE leases;",
        "ALTER TABLE quotas RENAME TO quotas_v0;",
        "DROP INDEX quotas_pick; DROP INDEX quotas_reset;",
        QUOTAS,
        f"INSERT INTO quotas ({QUOTA_COLUMNS}) SELECT {QUOTA_COLUMNS} FROM quotas_v0;",  # noqa: S608
        "DROP TABLE quotas_v0;",
        REFRESH,
        "INSERT OR IGNORE INTO refresh (account_id) SELECT id FROM accounts;",
        UPKEEP,
        RANK_COPIES,
    ]


def _split(script: str) -> list[str]:
    """The statements of a script (a trigger body's `;` stays inside its statement)."""
    out: list[str] = []
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                out.append(pending.strip())
            pending = ""
    return out
