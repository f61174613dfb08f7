"""One byte form of a `StoredResponse` for every store: zlib-compressed JSON.

Stored responses repeat their conversation (`context`), so they compress well; the stores keep
the owner and the expiry beside the blob, where a condition or an expiry can see them.
"""

from __future__ import annotations

import zlib

import orjson

from core.ports import StoredResponse


def pack(stored: StoredResponse) -> bytes:
    doc = {
        "id": stored.id,
        "owner": stored.owner,
        "created_at": stored.created_at,
        "expires_at": stored.expires_at,
        "response": stored.response,
        "input_items": stored.input_items,
        "context": stored.context,
    }
    return zlib.compress(orjson.dumps(doc), 6)


def unpack(blob: bytes) -> StoredResponse:
    doc = orjson.loads(zlib.decompress(blob))
    return StoredResponse(
        id=doc["id"],
        owner=doc["owner"],
        created_at=doc["created_at"],
        expires_at=doc["expires_at"],
        response=doc["response"],
        input_items=doc["input_items"],
        context=doc.get("context") or [],
    )
