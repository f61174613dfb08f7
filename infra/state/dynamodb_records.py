"""`RecordStore` on DynamoDB: one item per record (`pk` = `rec#<key>`) in the account store's
table, written with conditional puts on its version; `exp` holds the expiry, checked on read
(items outside the `ids` index never appear in account listings)."""

from __future__ import annotations

import json
from typing import Any

from core.errors import StoreUnavailable
from infra.state.dynamodb import DynamoDBAccountStore, _Conflict, _num

NEVER = 2**53  # an expiry that does not come


class DynamoDBRecordStore:
    """Records in the table of `store`, sharing its client and thread pool."""

    def __init__(self, store: DynamoDBAccountStore) -> None:
        self._store = store

    async def read(self, key: str, *, now: float) -> tuple[dict[str, Any] | None, int]:
        reply = await self._store._call("get_item", Key={"pk": {"S": "rec#" + key}}, ConsistentRead=True)
        item = reply.get("Item")
        if not item or float(item["exp"]["N"]) <= now:
            return None, 0
        return json.loads(item["doc"]["S"]), int(item["ver"]["N"])

    async def write(
        self, key: str, value: dict[str, Any], *, version: int, now: float, ttl: float | None = None
    ) -> bool:
        item = {
            "pk": {"S": "rec#" + key},
            "doc": {"S": json.dumps(value, separators=(",", ":"))},
            "ver": _num(version + 1),
            "exp": _num(NEVER if ttl is None else now + ttl),
        }
        if version == 0:
            condition = "attribute_not_exists(pk) OR exp <= :now"
            values = {":now": _num(now)}
        else:
            condition = "ver = :v AND exp > :now"
            values = {":v": _num(version), ":now": _num(now)}
        try:
            await self._store._call(
                "put_item", Item=item, ConditionExpression=condition, ExpressionAttributeValues=values
            )
        except _Conflict:
            return False
        return True

    async def count(self, key: str, *, now: float, window: float) -> int:
        pk = {"pk": {"S": "rec#n:" + key}}
        for _ in range(5):
            try:
                reply = await self._store._call(
                    "update_item",
                    Key=pk,
                    UpdateExpression="ADD ver :one",
                    ConditionExpression="exp > :now",
                    ExpressionAttributeValues={":one": _num(1), ":now": _num(now)},
                    ReturnValues="UPDATED_NEW",
                )
                return int(reply["Attributes"]["ver"]["N"])
            except _Conflict:
                pass
            try:  # absent or expired: start the window
                await self._store._call(
                    "put_item",
                    Item={**pk, "ver": _num(1), "exp": _num(now + window), "doc": {"S": "{}"}},
                    ConditionExpression="attribute_not_exists(pk) OR exp <= :now",
                    ExpressionAttributeValues={":now": _num(now)},
                )
                return 1
            except _Conflict:
                continue  # another caller started it first: count on it
        raise StoreUnavailable("The record store is unavailable (a counter kept changing).")

    async def close(self) -> None:
        return None  # the client belongs to the account store
