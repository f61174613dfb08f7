"""What every job store decides the same way, whatever it stores in: whether a claim may be
taken, how a listing is ordered, and how a job crosses the boundary as plain fields.

The Redis store makes the same decisions inside its Lua scripts (`infra/jobs/redis_lua.py`); the
contract suite (tests/contract/test_job_store_contract.py) holds the four stores to one behaviour.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.ports import Job, JobStatus

ABANDONED = "job_abandoned"
ORDERS = ("asc", "desc")


def abandoned_message(attempts: int) -> str:
    return f"The video job stopped responding after {attempts} attempt(s) and was given up."


@dataclass(frozen=True, slots=True)
class ClaimDecision:
    """`take` with the attempt number the new claim gets, or `give_up` (mark FAILED), or neither."""

    take: bool
    attempt: int = 0
    give_up: bool = False


NO_CLAIM = ClaimDecision(False)


def decide_claim(job: Job, *, now: float, max_attempts: int) -> ClaimDecision:
    """A queued job starts its first attempt; a job released between steps continues the attempt it
    is in once it is due; a live claim blocks; an expired one is a dead runner's, taken over as a
    new attempt unless the attempts are used up."""
    if job.status is JobStatus.QUEUED:
        return ClaimDecision(True, job.attempts + 1)
    if job.status is not JobStatus.IN_PROGRESS or job.claim_expires_at > now:
        return NO_CLAIM
    if not job.claim_id:
        return ClaimDecision(True, max(job.attempts, 1))
    if job.attempts >= max_attempts:
        return ClaimDecision(False, give_up=True)
    return ClaimDecision(True, job.attempts + 1)


def sort_key(job: Job) -> tuple[float, str]:
    return (job.created_at, job.id)


def check_order(order: str) -> str:
    if order not in ORDERS:
        raise ValueError(f"order must be 'asc' or 'desc' (got {order!r})")
    return order


def to_fields(job: Job) -> dict[str, Any]:
    """The job as flat JSON-safe fields (params, result and state as JSON text)."""
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status.value,
        "params": json.dumps(job.params),
        "result": json.dumps(job.result),
        "state": json.dumps(job.state),
        "progress": job.progress,
        "error_code": job.error_code,
        "error_message": job.error_message,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "completed_at": job.completed_at,
        "attempts": job.attempts,
        "claim_id": job.claim_id,
        "claim_expires_at": job.claim_expires_at,
        "owner": job.owner,
    }


def from_fields(f: dict[str, Any]) -> Job:
    """The inverse of `to_fields`; numbers may arrive as strings (Redis) or Decimals (DynamoDB)."""
    completed = f.get("completed_at")
    return Job(
        id=str(f["id"]),
        kind=str(f["kind"]),
        status=JobStatus(f["status"]),
        params=json.loads(f.get("params") or "{}"),
        result=json.loads(f.get("result") or "{}"),
        state=json.loads(f.get("state") or "{}"),
        progress=int(float(f.get("progress") or 0)),
        error_code=str(f.get("error_code") or ""),
        error_message=str(f.get("error_message") or ""),
        created_at=float(f["created_at"]),
        updated_at=float(f.get("updated_at") or f["created_at"]),
        completed_at=float(completed) if completed not in (None, "", "null") else None,
        attempts=int(float(f.get("attempts") or 0)),
        claim_id=str(f.get("claim_id") or ""),
        claim_expires_at=float(f.get("claim_expires_at") or 0),
        owner=str(f.get("owner") or ""),
    )
