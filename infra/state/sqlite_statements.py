"""The SQL the embedded account store runs (`infra/state/sqlite.py`), over the layout of
`infra/state/sqlite_schema.py`. Text only: which statement runs when is the store's business."""

from __future__ import annotations

import functools

from core.accounts import OutcomeKind
from infra.state.sqlite_schema import LEASE_ENTRY_LENGTH, QUOTA_COLUMNS

ACCOUNT_COLUMNS = (
    "id, token, tier, status, note, tags, in_flight, cooling_until, reason, created_at, "
    "last_used_at, last_failure_at, use_count, fail_count, tier_source"
)
# The fields of `Account` kept as columns of `accounts`, compared to find what a change wrote.
SAVED_FIELDS = (
    "token", "tier", "tier_source", "status", "note", "tags", "in_flight", "cooling_until", "reason",
    "last_used_at", "last_failure_at", "use_count", "fail_count",
)  # fmt: skip

SELECT_ACCOUNT = f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id=?"  # noqa: S608 - constant columns
SELECT_QUOTAS = "SELECT mode, remaining, total, window_seconds, reset_at FROM quotas WHERE account_id=?"
INSERT_ACCOUNT = (
    "INSERT OR IGNORE INTO accounts (id, token, tier, status, note, tags, created_at, tier_source) "
    "VALUES (?,?,?,?,?,?,?,?)"
)
INSERT_REFRESH = "INSERT OR IGNORE INTO refresh (account_id) VALUES (?)"
DELETE_ACCOUNT = "DELETE FROM accounts WHERE id=?"  # its quota and refresh rows go by foreign key


def update_account(columns: list[str]) -> str:
    """Set `columns` (names from `SAVED_FIELDS`) of one account: values, then the id."""
    return f"UPDATE accounts SET {', '.join(f'{name}=?' for name in columns)} WHERE id=?"  # noqa: S608


def list_accounts(clauses: list[str]) -> str:
    """A page of accounts in id order, `clauses` ANDed; the last argument is the row limit."""
    return f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?"  # noqa: S608


UPDATE_TIER_RANK = "UPDATE quotas SET tier_rank=? WHERE account_id=?"
UPSERT_QUOTA = (
    f"INSERT INTO quotas ({QUOTA_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?) "  # noqa: S608
    "ON CONFLICT(account_id, mode) DO UPDATE SET remaining=excluded.remaining, "
    "total=excluded.total, window_seconds=excluded.window_seconds, reset_at=excluded.reset_at"
)
EARLIER_UPKEEP = (  # cooling_due, reset_due, cooling_due, reset_due
    "UPDATE upkeep SET cooling_due=MIN(cooling_due, ?), reset_due=MIN(reset_due, ?) "
    "WHERE cooling_due > ? OR reset_due > ?"
)

# -- upkeep --------------------------------------------------------------------------------
UPKEEP_SQL = "SELECT leases_due, cooling_due, reset_due FROM upkeep"
HELD_LEASES = "SELECT id, leases FROM accounts WHERE leases != ''"
DROP_LEASES = "UPDATE accounts SET leases=?, in_flight=MAX(0, in_flight-?) WHERE id=?"
END_COOLING = (
    "UPDATE accounts SET status='active', cooling_until=0 WHERE status='cooling' AND cooling_until <= ?"
)
NEXT_COOLING = "SELECT MIN(cooling_until) FROM accounts WHERE status='cooling'"
REFILL_QUOTAS = "UPDATE quotas SET remaining=total, reset_at=? + window_seconds WHERE reset_at <= ?"
NEXT_RESET = "SELECT MIN(reset_at) FROM quotas"
SET_UPKEEP = "UPDATE upkeep SET leases_due=?, cooling_due=?, reset_due=?"

# -- a lease -------------------------------------------------------------------------------
# Quota rows in index order with the account's exact figures beside the row's lower bounds, and
# when upkeep is next due (uncorrelated subqueries: read once).
PICK_SQL = (
    "SELECT q.account_id, q.tier_rank, q.remaining, q.in_flight, q.last_used_at, a.in_flight, a.last_used_at, "
    "a.token, (SELECT leases_due FROM upkeep), (SELECT MIN(cooling_due, reset_due) FROM upkeep) "
    "FROM quotas q CROSS JOIN accounts a ON a.id = q.account_id "
    "WHERE q.mode=? AND q.usable=1 AND q.tier_rank IN ({marks}) AND q.remaining > 0 "
    "ORDER BY q.tier_rank, q.remaining DESC, q.in_flight, q.last_used_at"
)


@functools.lru_cache(maxsize=8)
def pick_sql(tiers: int) -> str:
    """`PICK_SQL` for `tiers` tier ranks."""
    return PICK_SQL.format(marks=",".join("?" * tiers))


TAKE_ACCOUNT = "UPDATE accounts SET in_flight=in_flight+1, last_used_at=?, leases=leases || ? WHERE id=?"
# This mode's row: one unit, and the copies as they will be once this lease ends.
TAKE_QUOTA = (
    "UPDATE quotas SET remaining=remaining-1, in_flight=?, last_used_at=? WHERE account_id=? AND mode=?"
)


def refresh_copies(accounts: int) -> str:
    """Bring the ranking copies of `accounts` rows of one mode up to date: mode, then the ids."""
    marks = ",".join("?" * accounts)
    return (
        "UPDATE quotas SET in_flight=a.in_flight, last_used_at=a.last_used_at "  # noqa: S608
        f"FROM accounts a WHERE a.id=quotas.account_id AND quotas.mode=? AND quotas.account_id IN ({marks})"
    )


SET_LEASES_DUE = "UPDATE upkeep SET leases_due=?"

# -- a release -----------------------------------------------------------------------------
# `accounts.leases` minus the entry of lease :lease (entries are fixed width; ids start "lease_").
_CUT = f"substr(leases, 1, instr(leases, :lease) - 1) || substr(leases, instr(leases, :lease) + {LEASE_ENTRY_LENGTH})"
_HELD = "WHERE id = :account AND instr(leases, :lease)"
# What `apply_outcome` does for the outcomes most releases carry (SUCCESS, CANCELLED; no reported
# window), as UPDATEs tried in turn until one applies (SET expressions read the row as it was):
# first for an account already ACTIVE with nothing to clear, which leaves the status columns and
# their index alone. A refund is one more UPDATE. tests/infra/test_sqlite_store.py holds these to
# `apply_outcome`.
RELEASE_SQL = {
    OutcomeKind.SUCCESS: (
        f"UPDATE accounts SET leases = {_CUT}, in_flight = MAX(0, in_flight - 1), "  # noqa: S608
        f"use_count = use_count + 1 {_HELD} AND status = 'active' AND cooling_until = 0 AND reason = ''",
        f"UPDATE accounts SET leases = {_CUT}, in_flight = MAX(0, in_flight - 1), "  # noqa: S608
        "use_count = use_count + 1, cooling_until = 0, "
        "status = CASE WHEN status = 'disabled' THEN status ELSE 'active' END, "
        f"reason = CASE WHEN status = 'disabled' THEN reason ELSE '' END {_HELD}",
    ),
    OutcomeKind.CANCELLED: (
        f"UPDATE accounts SET leases = {_CUT}, in_flight = MAX(0, in_flight - 1) {_HELD}",  # noqa: S608
    ),
}
RELEASE_ONLY_SQL = f"UPDATE accounts SET leases = {_CUT} {_HELD}"  # noqa: S608
REFUND_SQL = "UPDATE quotas SET remaining = MIN(total, remaining + 1) WHERE account_id=? AND mode=?"

# -- quota refresh -------------------------------------------------------------------------
DUE_FOR_REFRESH = "SELECT account_id FROM refresh WHERE refresh_at <= ? ORDER BY refresh_at LIMIT ?"
CLAIM_REFRESH = (  # now, next_at, account_id, now, min_interval
    "UPDATE refresh SET refreshed_at=?, refresh_at=? WHERE account_id=? AND ? - refreshed_at >= ?"
)
