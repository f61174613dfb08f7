"""The JobStore on DynamoDB: one item per job, every change a conditional write.

A claim reads the item (consistently), decides with `infra.jobs.rules.decide_claim`, and writes
under the condition that status, claim and attempts are still what it read: of two runners, the
second write fails (`ConditionalCheckFailedException`) and that runner is told None. Updates of a
runner are conditioned on its claim id. The table (`jobs_table_definition`, also declared in
serverless.yml) has two sparse indexes: `due` (`d`, `due_at`: jobs a runner may claim, present
until the job ends) and `owner` (`own`, `oc`: one owner's jobs by creation time, then id).

The client and its thread pool: `infra/dynamodb_table.py`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Unpack

from core.ports import Job, JobClaim, JobStatus
from infra.dynamodb_table import Conflict, DynamoDBTable, TableAccess, location, number, table_request
from infra.jobs.rules import ABANDONED, abandoned_message, check_order, decide_claim, from_fields, to_fields

DUE = "due"
_NUMBERS = frozenset({"progress", "created_at", "updated_at", "completed_at", "attempts", "claim_expires_at"})


_NAMES = {"#s": "status", "#st": "state", "#r": "result"}  # reserved words in expressions


def _names(*expressions: str) -> dict[str, str]:
    text = " ".join(expressions)
    return {alias: name for alias, name in _NAMES.items() if alias + " " in text + " "}


def jobs_table_definition(table: str) -> dict[str, Any]:
    """The `CreateTable` request for the jobs table (what serverless.yml declares, compared in a test)."""
    return table_request(
        table,
        (("pk", "S"), ("d", "S"), ("due_at", "N"), ("own", "S"), ("oc", "S")),
        (("due", "d", "due_at", "KEYS_ONLY"), ("owner", "own", "oc", "ALL")),
    )


def _order_key(created_at: float, job_id: str) -> str:
    return f"{created_at:020.6f}|{job_id}"  # sorts as (created_at, id) for any time after 1970


def _item(job: Job) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": {"S": job.id}}
    for name, value in to_fields(job).items():
        if name == "id" or value is None:
            continue
        item[name] = number(value) if name in _NUMBERS else {"S": str(value)}
    item["own"] = {"S": "o#" + job.owner}  # an index key may not be the empty string
    item["oc"] = {"S": _order_key(job.created_at, job.id)}
    if job.status in (JobStatus.QUEUED, JobStatus.IN_PROGRESS):
        item["d"] = {"S": DUE}
        item["due_at"] = number(job.created_at if job.status is JobStatus.QUEUED else job.claim_expires_at)
    return item


def _job(item: Mapping[str, Any]) -> Job:
    fields: dict[str, Any] = {"id": item["pk"]["S"]}
    for name, value in item.items():
        if "S" in value:
            fields[name] = value["S"]
        elif "N" in value:
            fields[name] = value["N"]
    return from_fields(fields)


class DynamoDBJobStore:
    """`JobStore` on one DynamoDB table (`dynamodb://TABLE`), created on first use if missing."""

    def __init__(self, table: str, **access: Unpack[TableAccess]) -> None:
        self.table = table
        self.db = DynamoDBTable(table, jobs_table_definition, name="job store", workers=8, **access)

    @classmethod
    def from_url(cls, url: str, environ: Mapping[str, str] | None = None) -> DynamoDBJobStore:
        return cls(**location(url, environ))

    async def create(self, job: Job) -> Job:
        try:
            await self.db.call("put_item", Item=_item(job), ConditionExpression="attribute_not_exists(pk)")
        except Conflict:
            pass
        stored = await self.get(job.id)
        if stored is None:  # created and deleted in between: the caller's job is what was asked
            return job
        return stored

    async def get(self, job_id: str) -> Job | None:
        reply = await self.db.call("get_item", Key={"pk": {"S": job_id}}, ConsistentRead=True)
        return _job(reply["Item"]) if "Item" in reply else None

    async def list(
        self, owner: str, *, after: str | None = None, limit: int = 20, order: str = "desc"
    ) -> list[Job]:
        desc = check_order(order) == "desc"
        condition = "own = :o"
        values: dict[str, Any] = {":o": {"S": "o#" + owner}}
        if after:
            anchor = await self.get(after)
            if anchor is None or anchor.owner != owner:
                return []
            condition += f" AND oc {'<' if desc else '>'} :a"
            values[":a"] = {"S": _order_key(anchor.created_at, anchor.id)}
        reply = await self.db.call(
            "query",
            IndexName="owner",
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=not desc,
            Limit=max(1, limit),
        )
        return [_job(item) for item in reply.get("Items", [])]

    async def delete(self, job_id: str) -> bool:
        reply = await self.db.call("delete_item", Key={"pk": {"S": job_id}}, ReturnValues="ALL_OLD")
        return bool(reply.get("Attributes"))

    async def claim(self, job_id: str, *, now: float, ttl: float, max_attempts: int) -> JobClaim | None:
        job = await self.get(job_id)
        if job is None:
            return None
        decision = decide_claim(job, now=now, max_attempts=max_attempts)
        read = {
            ":s": {"S": job.status.value},
            ":c": {"S": job.claim_id},
            ":a": number(job.attempts),
        }
        as_read = "#s = :s AND claim_id = :c AND attempts = :a"
        try:
            if decision.give_up:
                await self.db.call(
                    "update_item",
                    Key={"pk": {"S": job_id}},
                    UpdateExpression="SET #s = :f, error_code = :ec, error_message = :em, completed_at = :n, "
                    "updated_at = :n, claim_id = :e REMOVE d, due_at",
                    ConditionExpression=as_read,
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={
                        **read,
                        ":f": {"S": JobStatus.FAILED.value},
                        ":ec": {"S": ABANDONED},
                        ":em": {"S": abandoned_message(job.attempts)},
                        ":n": number(now),
                        ":e": {"S": ""},
                    },
                )
            if not decision.take:
                return None
            claim = JobClaim(job_id, uuid.uuid4().hex, decision.attempt, now + ttl)
            await self.db.call(
                "update_item",
                Key={"pk": {"S": job_id}},
                UpdateExpression="SET #s = :ip, attempts = :na, claim_id = :nc, claim_expires_at = :x, "
                "due_at = :x, d = :d, updated_at = :n",
                ConditionExpression=as_read,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    **read,
                    ":ip": {"S": JobStatus.IN_PROGRESS.value},
                    ":na": number(claim.attempt),
                    ":nc": {"S": claim.claim_id},
                    ":x": number(claim.expires_at),
                    ":d": {"S": DUE},
                    ":n": number(now),
                },
            )
            return claim
        except Conflict:
            return None

    async def _update(
        self,
        claim: JobClaim,
        sets: str,
        values: dict[str, Any],
        *,
        extra_condition: str = "",
        remove: str = "",
    ) -> bool:
        condition = "#s = :ip AND claim_id = :c" + (f" AND {extra_condition}" if extra_condition else "")
        try:
            await self.db.call(
                "update_item",
                Key={"pk": {"S": claim.job_id}},
                UpdateExpression=f"SET {sets}" + (f" REMOVE {remove}" if remove else ""),
                ConditionExpression=condition,
                ExpressionAttributeNames=_names(sets, condition),
                ExpressionAttributeValues={
                    ":ip": {"S": JobStatus.IN_PROGRESS.value},
                    ":c": {"S": claim.claim_id},
                    **values,
                },
            )
        except Conflict:
            return False
        return True

    async def progress(
        self,
        claim: JobClaim,
        progress: int,
        *,
        now: float,
        ttl: float,
        state: dict[str, Any] | None = None,
    ) -> bool:
        sets = "claim_expires_at = :x, due_at = :x, updated_at = :n"
        values: dict[str, Any] = {":x": number(now + ttl), ":n": number(now)}
        if state is not None:
            sets += ", #st = :state"
            values[":state"] = {"S": json.dumps(state)}
        # Progress only rises: try with it (condition: it is not lower), else without it.
        if await self._update(
            claim,
            sets + ", progress = :p",
            {**values, ":p": number(progress)},
            extra_condition="progress <= :p",
        ):
            return True
        return await self._update(claim, sets, values)

    async def advance(
        self, claim: JobClaim, state: dict[str, Any], *, progress: int, now: float, due_at: float
    ) -> bool:
        sets = "#st = :state, claim_id = :e, claim_expires_at = :x, due_at = :x, updated_at = :n"
        values: dict[str, Any] = {
            ":state": {"S": json.dumps(state)},
            ":e": {"S": ""},
            ":x": number(due_at),
            ":n": number(now),
        }
        if await self._update(
            claim,
            sets + ", progress = :p",
            {**values, ":p": number(progress)},
            extra_condition="progress <= :p",
        ):
            return True
        return await self._update(claim, sets, values)

    async def complete(self, claim: JobClaim, result: dict[str, Any], *, now: float) -> bool:
        return await self._update(
            claim,
            "#s = :done, progress = :h, #r = :r, completed_at = :n, updated_at = :n, claim_id = :e",
            {
                ":done": {"S": JobStatus.COMPLETED.value},
                ":h": number(100),
                ":r": {"S": json.dumps(result)},
                ":n": number(now),
                ":e": {"S": ""},
            },
            remove="d, due_at",
        )

    async def fail(self, claim: JobClaim, code: str, message: str, *, now: float) -> bool:
        return await self._update(
            claim,
            "#s = :f, error_code = :ec, error_message = :em, completed_at = :n, updated_at = :n, claim_id = :e",
            {
                ":f": {"S": JobStatus.FAILED.value},
                ":ec": {"S": code},
                ":em": {"S": message},
                ":n": number(now),
                ":e": {"S": ""},
            },
            remove="d, due_at",
        )

    async def due(self, *, now: float, limit: int) -> list[str]:
        reply = await self.db.call(
            "query",
            IndexName="due",
            KeyConditionExpression="d = :d AND due_at <= :n",
            ExpressionAttributeValues={":d": {"S": DUE}, ":n": number(now)},
            Limit=max(1, limit),
        )
        return [item["pk"]["S"] for item in reply.get("Items", [])]

    async def aclose(self) -> None:
        await self.db.aclose()
