"""`ResponseStore` on DynamoDB: items `resp#<id>` in the account store's table.

The packed response is split into parts of at most `PART` bytes (an item holds 400 KB): the head
item carries the owner, the expiry and part 0, parts 1.. are items `resp#<id>#<n>`, written
before the head so a visible head is always complete. `exp` is checked on every read; `gc_at` is
the table's TTL attribute, so DynamoDB removes expired items itself.
"""

from __future__ import annotations

import math

from core.ports import StoredResponse
from infra.dynamodb_table import Conflict, number
from infra.state.dynamodb import DynamoDBAccountStore
from infra.state.response_codec import pack_async, unpack_async

PART = 350_000


class DynamoDBResponseStore:
    """Stored responses in the table of `store`, sharing its client and thread pool."""

    def __init__(self, store: DynamoDBAccountStore) -> None:
        self._db = store.db

    @staticmethod
    def _key(response_id: str, part: int = 0) -> dict[str, dict[str, str]]:
        return {"pk": {"S": f"resp#{response_id}" + (f"#{part}" if part else "")}}

    async def put(self, stored: StoredResponse) -> None:
        blob = await pack_async(stored)
        parts = [blob[at : at + PART] for at in range(0, len(blob), PART)] or [b""]
        expiry = {"exp": number(stored.expires_at), "gc_at": number(math.ceil(stored.expires_at))}
        for n, part in enumerate(parts[1:], start=1):
            await self._db.call("put_item", Item={**self._key(stored.id, n), **expiry, "b": {"B": part}})
        head = {
            **self._key(stored.id),
            **expiry,
            "o": {"S": stored.owner},
            "n": number(len(parts)),
            "b": {"B": parts[0]},
        }
        await self._db.call("put_item", Item=head)

    async def get(self, response_id: str, *, owner: str, now: float) -> StoredResponse | None:
        reply = await self._db.call("get_item", Key=self._key(response_id), ConsistentRead=True)
        item = reply.get("Item")
        if not item or item.get("o", {}).get("S") != owner or float(item["exp"]["N"]) <= now:
            return None
        blob = [bytes(item["b"]["B"])]
        for n in range(1, int(item["n"]["N"])):
            part = await self._db.call("get_item", Key=self._key(response_id, n), ConsistentRead=True)
            if "Item" not in part:
                return None  # expired under us
            blob.append(bytes(part["Item"]["b"]["B"]))
        return await unpack_async(b"".join(blob))

    async def delete(self, response_id: str, *, owner: str, now: float) -> bool:
        try:
            reply = await self._db.call(
                "delete_item",
                Key=self._key(response_id),
                ConditionExpression="o = :o AND exp > :now",
                ExpressionAttributeValues={":o": {"S": owner}, ":now": number(now)},
                ReturnValues="ALL_OLD",
            )
        except Conflict:
            return False
        for n in range(1, int(reply.get("Attributes", {}).get("n", {}).get("N", "1"))):
            await self._db.call("delete_item", Key=self._key(response_id, n))
        return True

    async def aclose(self) -> None:
        return None  # the client belongs to the account store
