"""The JobStore on Redis: one Lua script per change (`redis_lua.py` draws the keys), over either
transport of the account store (`UpstashTransport` REST or redis-py `TcpTransport`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from core.ports import Job, JobClaim
from infra.jobs import redis_lua
from infra.jobs.rules import ABANDONED, abandoned_message, check_order, from_fields, to_fields
from infra.state.redis import RedisScripts, _Script

ABANDONED_TEMPLATE = abandoned_message(0).replace("0", "%d", 1)  # the Lua side formats the count
SCRIPTS = {
    name: _Script(getattr(redis_lua, name)) for name in ("CREATE", "CLAIM", "UPDATE", "LIST", "DELETE")
}


def _num(value: float) -> str:
    return repr(float(value))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return _num(value)
    return str(value)


def _job(flat: Sequence[str] | dict[str, str]) -> Job | None:
    if not flat:
        return None
    h = flat if isinstance(flat, dict) else dict(zip(flat[::2], flat[1::2], strict=True))
    return from_fields(h)


class RedisJobStore(RedisScripts):
    """`JobStore` on Redis. Construct with `from_url` (TCP) or `upstash` (REST)."""

    SCRIPTS = SCRIPTS
    KEY = "jobs"

    async def create(self, job: Job) -> Job:
        pairs: list[str] = []
        for name, value in to_fields(job).items():
            pairs += [name, _text(value)]
        stored = _job(await self._run("CREATE", job.id, job.owner, _num(job.created_at), *pairs))
        assert stored is not None
        return stored

    async def get(self, job_id: str) -> Job | None:
        return _job(await self._t.command("HGETALL", f"{self.prefix}job:{job_id}"))

    async def list(
        self, owner: str, *, after: str | None = None, limit: int = 20, order: str = "desc"
    ) -> list[Job]:
        reply = await self._run("LIST", owner, after or "", str(max(1, limit)), check_order(order))
        return [job for job in map(_job, reply) if job is not None]

    async def delete(self, job_id: str) -> bool:
        return bool(await self._run("DELETE", job_id))

    async def claim(self, job_id: str, *, now: float, ttl: float, max_attempts: int) -> JobClaim | None:
        claim_id = uuid.uuid4().hex
        reply = await self._run(
            "CLAIM", job_id, _num(now), _num(ttl), str(max_attempts), claim_id, ABANDONED, ABANDONED_TEMPLATE
        )
        if not reply:
            return None
        return JobClaim(job_id, claim_id, int(reply[0]), float(reply[1]))

    async def _update(self, claim: JobClaim, op: str, now: float, *args: str) -> bool:
        return bool(await self._run("UPDATE", claim.job_id, claim.claim_id, op, _num(now), *args))

    async def progress(
        self,
        claim: JobClaim,
        progress: int,
        *,
        now: float,
        ttl: float,
        state: dict[str, Any] | None = None,
    ) -> bool:
        encoded = "" if state is None else json.dumps(state)
        return await self._update(claim, "progress", now, str(progress), _num(ttl), encoded)

    async def advance(
        self, claim: JobClaim, state: dict[str, Any], *, progress: int, now: float, due_at: float
    ) -> bool:
        return await self._update(claim, "advance", now, str(progress), json.dumps(state), _num(due_at))

    async def complete(self, claim: JobClaim, result: dict[str, Any], *, now: float) -> bool:
        return await self._update(claim, "complete", now, json.dumps(result))

    async def fail(self, claim: JobClaim, code: str, message: str, *, now: float) -> bool:
        return await self._update(claim, "fail", now, code, message)

    async def due(self, *, now: float, limit: int) -> list[str]:
        ids = await self._t.command(
            "ZRANGEBYSCORE", f"{self.prefix}jobs:due", "-inf", _num(now), "LIMIT", "0", str(max(1, limit))
        )
        return [str(i) for i in ids]
