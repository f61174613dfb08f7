"""The JobStore on SQLite: every change is one IMMEDIATE transaction, so a claim is atomic
across processes sharing the file, with the semantics a DynamoDB conditional write or a Redis
script gives (see `core.ports.JobStore` and `infra.jobs.rules`).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any, TypeVar

from core.ports import Job, JobClaim, JobStatus
from infra.jobs.rules import ABANDONED, abandoned_message, check_order, decide_claim
from infra.sqlite_db import SQLiteFile

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    params TEXT NOT NULL,
    result TEXT NOT NULL DEFAULT '{}',
    progress INTEGER NOT NULL DEFAULT 0,
    error_code TEXT NOT NULL DEFAULT '',
    error_message TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    completed_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    claim_id TEXT NOT NULL DEFAULT '',
    claim_expires_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (status, claim_expires_at, created_at);
"""
# Columns added after the first release: added to an older file when it is opened.
ADDED = (("owner", "TEXT NOT NULL DEFAULT ''"), ("state", "TEXT NOT NULL DEFAULT '{}'"))
COLUMNS = (
    "id, kind, status, params, result, progress, error_code, error_message, created_at, updated_at, "
    "completed_at, attempts, claim_id, claim_expires_at, owner, state"
)
__all__ = ["ABANDONED", "SQLiteJobStore"]


def _job(row: tuple[Any, ...]) -> Job:
    return Job(
        id=row[0],
        kind=row[1],
        status=JobStatus(row[2]),
        params=json.loads(row[3]),
        result=json.loads(row[4]),
        progress=row[5],
        error_code=row[6],
        error_message=row[7],
        created_at=row[8],
        updated_at=row[9],
        completed_at=row[10],
        attempts=row[11],
        claim_id=row[12],
        claim_expires_at=row[13],
        owner=row[14],
        state=json.loads(row[15]),
    )


def _add_columns(db: sqlite3.Connection) -> None:
    have = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    for name, decl in ADDED:
        if name not in have:
            db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {decl}")
    db.execute("CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, created_at, id)")


class SQLiteJobStore:
    """`JobStore` on an SQLite file (its own table; it may share the account store's file)."""

    def __init__(self, path: str | Path) -> None:
        self._file = SQLiteFile(
            path, name="job store", thread="sqlite-jobs", schema=SCHEMA, prepare=_add_columns
        )
        self.path = self._file.path
        self._run = self._file.run

    @classmethod
    def from_url(cls, url: str) -> SQLiteJobStore:
        return cls(url.removeprefix("sqlite:///"))

    @staticmethod
    def _read(db: sqlite3.Connection, job_id: str) -> Job | None:
        row = db.execute(f"SELECT {COLUMNS} FROM jobs WHERE id=?", (job_id,)).fetchone()  # noqa: S608
        return _job(row) if row else None

    async def create(self, job: Job) -> Job:
        def go(db: sqlite3.Connection) -> Job:
            db.execute(
                f"INSERT OR IGNORE INTO jobs ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
                (
                    job.id,
                    job.kind,
                    job.status.value,
                    json.dumps(job.params),
                    json.dumps(job.result),
                    job.progress,
                    job.error_code,
                    job.error_message,
                    job.created_at,
                    job.updated_at,
                    job.completed_at,
                    job.attempts,
                    job.claim_id,
                    job.claim_expires_at,
                    job.owner,
                    json.dumps(job.state),
                ),
            )
            stored = self._read(db, job.id)
            assert stored is not None
            return stored

        return await self._run(go)

    async def get(self, job_id: str) -> Job | None:
        return await self._run(lambda db: self._read(db, job_id))

    async def list(
        self, owner: str, *, after: str | None = None, limit: int = 20, order: str = "desc"
    ) -> list[Job]:
        desc = check_order(order) == "desc"

        def go(db: sqlite3.Connection) -> list[Job]:
            where, args = "owner=?", [owner]
            if after:
                anchor = db.execute(
                    "SELECT created_at, id FROM jobs WHERE id=? AND owner=?", (after, owner)
                ).fetchone()
                if anchor is None:
                    return []
                where += f" AND (created_at, id) {'<' if desc else '>'} (?, ?)"
                args += list(anchor)
            direction = "DESC" if desc else "ASC"
            rows = db.execute(
                f"SELECT {COLUMNS} FROM jobs WHERE {where} "  # noqa: S608 - constant fragments
                f"ORDER BY created_at {direction}, id {direction} LIMIT ?",
                (*args, max(1, limit)),
            ).fetchall()
            return [_job(row) for row in rows]

        return await self._run(go)

    async def delete(self, job_id: str) -> bool:
        return await self._run(lambda db: db.execute("DELETE FROM jobs WHERE id=?", (job_id,)).rowcount == 1)

    async def claim(self, job_id: str, *, now: float, ttl: float, max_attempts: int) -> JobClaim | None:
        def go(db: sqlite3.Connection) -> JobClaim | None:
            job = self._read(db, job_id)
            if job is None:
                return None
            decision = decide_claim(job, now=now, max_attempts=max_attempts)
            if decision.give_up:
                db.execute(
                    "UPDATE jobs SET status='failed', error_code=?, error_message=?, completed_at=?, "
                    "updated_at=?, claim_id='' WHERE id=?",
                    (ABANDONED, abandoned_message(job.attempts), now, now, job_id),
                )
            if not decision.take:
                return None
            claim = JobClaim(job_id, uuid.uuid4().hex, decision.attempt, now + ttl)
            db.execute(
                "UPDATE jobs SET status='in_progress', attempts=?, claim_id=?, claim_expires_at=?, "
                "updated_at=? WHERE id=?",
                (claim.attempt, claim.claim_id, claim.expires_at, now, job_id),
            )
            return claim

        return await self._run(go)

    async def _update(self, claim: JobClaim, sql: str, args: tuple[Any, ...]) -> bool:
        def go(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                f"UPDATE jobs SET {sql} WHERE id=? AND claim_id=? AND status='in_progress'",  # noqa: S608
                (*args, claim.job_id, claim.claim_id),
            )
            return cursor.rowcount == 1

        return await self._run(go)

    async def progress(
        self,
        claim: JobClaim,
        progress: int,
        *,
        now: float,
        ttl: float,
        state: dict[str, Any] | None = None,
    ) -> bool:
        if state is None:
            return await self._update(
                claim,
                "progress=MAX(progress, ?), claim_expires_at=?, updated_at=?",
                (progress, now + ttl, now),
            )
        return await self._update(
            claim,
            "progress=MAX(progress, ?), claim_expires_at=?, updated_at=?, state=?",
            (progress, now + ttl, now, json.dumps(state)),
        )

    async def advance(
        self, claim: JobClaim, state: dict[str, Any], *, progress: int, now: float, due_at: float
    ) -> bool:
        return await self._update(
            claim,
            "progress=MAX(progress, ?), state=?, claim_id='', claim_expires_at=?, updated_at=?",
            (progress, json.dumps(state), due_at, now),
        )

    async def complete(self, claim: JobClaim, result: dict[str, Any], *, now: float) -> bool:
        return await self._update(
            claim,
            "status='completed', progress=100, result=?, completed_at=?, updated_at=?, claim_id=''",
            (json.dumps(result), now, now),
        )

    async def fail(self, claim: JobClaim, code: str, message: str, *, now: float) -> bool:
        return await self._update(
            claim,
            "status='failed', error_code=?, error_message=?, completed_at=?, updated_at=?, claim_id=''",
            (code, message, now, now),
        )

    async def due(self, *, now: float, limit: int) -> list[str]:
        def go(db: sqlite3.Connection) -> list[str]:
            rows = db.execute(
                "SELECT id FROM jobs WHERE status='queued' "
                "OR (status='in_progress' AND claim_expires_at <= ?) "
                "ORDER BY CASE status WHEN 'queued' THEN created_at ELSE claim_expires_at END, id LIMIT ?",
                (now, limit),
            ).fetchall()
            return [row[0] for row in rows]

        return await self._run(go)

    async def aclose(self) -> None:
        await self._file.aclose()
