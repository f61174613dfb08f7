"""`RecordStore` on DynamoDB: one item per record (`pk` = `rec#<key>`) in the account store's
table, written with conditional puts on its version; `exp` holds the expiry, checked on read
(items outside the `ids` index never appear in account listings)."""

from __future__ import annotations

import json
from typing import Any

from core.errors import StoreUnavailable
from infra.dynamodb_table import Conflict, number
from infra.state.dynamodb import DynamoDBAccountStore

NEVER = 2**53  # an expiry that does not come


class DynamoDBRecordStore:
    """Records in the table of `store`, sharing its client and thread pool."""

    def __init__(self, store: DynamoDBAccountStore) -> None:
        self._db = store.db

    async def read(self, key: str, *, now: float) -> tuple[dict[str, Any] | None, int]:
        reply = await self._db.call("get_item", Key={"pk": {"S": "rec#" + key}}, ConsistentRead=True)
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
            "ver": number(version + 1),
            "exp": number(NEVER if ttl is None else now + ttl),
        }
        if version == 0:
            condition = "attribute_not_exists(pk) OR exp <= :now"
            values = {":now": number(now)}
        else:
            condition = "ver = :v AND exp > :now"
            values = {":v": number(version), ":now": number(now)}
        try:
            await self._db.call(
                "put_item", Item=item, ConditionExpression=condition, ExpressionAttributeValues=values
            )
        except Conflict:
            return False
        return True

    async def count(self, key: str, *, now: float, window: float) -> int:
        pk = {"pk": {"S": "rec#n:" + key}}
        for _ in range(5):
            try:
                reply = await self._db.call(
                    "update_item",
                    Key=pk,
                    UpdateExpression="ADD ver :one",
                    ConditionExpression="exp > :now",
                    ExpressionAttributeValues={":one": number(1), ":now": number(now)},
                    ReturnValues="UPDATED_NEW",
                )
                return int(reply["Attributes"]["ver"]["N"])
            except Conflict:
                pass
            try:  # absent or expired: start the window
                await self._db.call(
                    "put_item",
                    Item={**pk, "ver": number(1), "exp": number(now + window), "doc": {"S": "{}"}},
                    ConditionExpression="attribute_not_exists(pk) OR exp <= :now",
                    ExpressionAttributeValues={":now": number(now)},
                )
                return 1
            except Conflict:
                continue  # another caller started it first: count on it
        raise StoreUnavailable("The record store is unavailable (a counter kept changing).")

    async def aclose(self) -> None:
        return None  # the client belongs to the account store
