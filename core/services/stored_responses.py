"""Stored Responses API responses: keep, retrieve, delete, list input items, replay a chain.

`store` (true unless the client says false) keeps each finished response with its input items
for `settings.responses_ttl` seconds; `previous_response_id` puts the stored conversation (its
context, its input items, its output items) ahead of the new input. A response belongs to its
`owner` (a hash of the API key that made it): another owner is told it does not exist.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from core.errors import InvalidRequest, NotFound
from core.ports import ResponseStore, StoredResponse
from core.transcode.responses import INPUT_ITEMS, item_id, response_of

_ID_PREFIX = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "custom_tool_call": "ctc",
    "custom_tool_call_output": "ctco",
    "reasoning": "rs",
    "web_search_call": "ws",
}
_LIST_ORDERS = ("asc", "desc")


def _part(role: str, content: Any) -> list[Any]:
    if not isinstance(content, str):
        return content if isinstance(content, list) else []
    if role == "assistant":
        return [{"type": "output_text", "text": content, "annotations": []}]
    return [{"type": "input_text", "text": content}]


def input_items(value: str | list[Any], response_id: str = "") -> list[dict[str, Any]]:
    """`input` as the list of items `GET /v1/responses/{id}/input_items` returns: each one an
    object with a `type` and an `id` (given, or made here from `response_id`, so an
    `item_reference` finds it), message text as content parts."""
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    items: list[dict[str, Any]] = []
    for n, raw in enumerate(value):
        if not isinstance(raw, dict):
            continue  # refused with a 400 by the input normaliser before anything is stored
        item = dict(raw)
        kind = item.setdefault("type", "message")
        if kind == "message":
            item["content"] = _part(str(item.get("role") or "user"), item.get("content"))
            item.setdefault("status", "completed")
        if not isinstance(item.get("id"), str) or not item["id"]:
            prefix = _ID_PREFIX.get(str(kind), "item")
            item["id"] = item_id(response_id, prefix, INPUT_ITEMS + n)
        items.append(item)
    return items


def owner_of(api_key: str | None) -> str:
    """Who a stored response belongs to: a hash of the key that made it ("" without one). The key
    itself is never stored."""
    if not api_key:
        return ""
    return "key:" + hashlib.sha256(api_key.encode()).hexdigest()


class StoredResponses:
    """Args:
    store: where responses are kept (the account store's backend).
    ttl: seconds a response is kept; 0 keeps nothing (`enabled` is False).
    clock: seconds since the epoch.
    """

    def __init__(self, store: ResponseStore, *, ttl: float, clock: Callable[[], float]) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    async def load(self, response_id: str, owner: str, *, param: str = "response_id") -> StoredResponse:
        """The stored response, or a 404 that names it (absent, expired, deleted, another's)."""
        found = await self.store.get(response_id, owner=owner, now=self.clock())
        if found is None:
            raise NotFound(f"Response with id '{response_id}' not found.", param=param)
        return found

    async def conversation(self, previous_id: str, owner: str) -> list[dict[str, Any]]:
        """The items `previous_response_id` replays: that response's context, its input items,
        then its output items."""
        previous = await self.load(previous_id, owner, param="previous_response_id")
        output = previous.response.get("output") or []
        return [*previous.context, *previous.input_items, *output]

    async def resolve(self, items: list[Any], owner: str) -> list[Any]:
        """`input` with each `item_reference` replaced by the stored item it names (an output or
        input item of one of `owner`'s stored responses); an unknown one is a 404."""
        found: dict[str, StoredResponse | None] = {}
        out: list[Any] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or item.get("type") != "item_reference":
                out.append(item)
                continue
            ref = item.get("id")
            param = f"input[{i}].id"
            if not isinstance(ref, str) or not ref:
                raise InvalidRequest(f"'{param}' is required.", param=param)
            rid = response_of(ref)
            if rid is not None and rid not in found:
                found[rid] = await self.store.get(rid, owner=owner, now=self.clock())
            stored = found.get(rid) if rid is not None else None
            items_of = [*(stored.response.get("output") or []), *stored.input_items] if stored else []
            match = next((x for x in items_of if isinstance(x, dict) and x.get("id") == ref), None)
            if match is None:
                raise NotFound(f"Item with id '{ref}' not found.", param=param)
            out.append(match)
        return out

    async def save(
        self,
        response: dict[str, Any],
        items: list[dict[str, Any]],
        context: list[dict[str, Any]],
        owner: str,
    ) -> None:
        now = self.clock()
        await self.store.put(
            StoredResponse(
                id=str(response["id"]),
                owner=owner,
                created_at=now,
                expires_at=now + self.ttl,
                response=response,
                input_items=items,
                context=context,
            )
        )

    async def delete(self, response_id: str, owner: str) -> dict[str, Any]:
        if not await self.store.delete(response_id, owner=owner, now=self.clock()):
            raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
        return {"id": response_id, "object": "response", "deleted": True}

    async def list_input_items(
        self,
        response_id: str,
        owner: str,
        *,
        after: str | None = None,
        before: str | None = None,
        limit: int = 20,
        order: str = "desc",
    ) -> dict[str, Any]:
        """One page of the input items, as OpenAI's cursor list: `order` (desc by default), items
        after the item id `after` and/or before the item id `before`, at most `limit` (1-100)."""
        if order not in _LIST_ORDERS:
            raise InvalidRequest("'order' must be 'asc' or 'desc'.", param="order")
        if not 1 <= limit <= 100:
            raise InvalidRequest("'limit' must be between 1 and 100.", param="limit")
        items = list((await self.load(response_id, owner)).input_items)
        if order == "desc":
            items.reverse()
        ids = [item.get("id") for item in items]
        for cursor, param in ((after, "after"), (before, "before")):
            if cursor is not None and cursor not in ids:
                raise InvalidRequest(f"No input item with id '{cursor}' in this response.", param=param)
        start = ids.index(after) + 1 if after is not None else 0
        end = ids.index(before) if before is not None else len(items)
        window = items[start:end]
        if before is not None and after is None:
            page = window[-limit:]  # the page just before the cursor
            more = len(window) > limit
        else:
            page = window[:limit]
            more = len(window) > limit
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": more,
        }

    async def aclose(self) -> None:
        await self.store.aclose()
