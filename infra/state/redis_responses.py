"""`ResponseStore` on Redis: one hash per response (`o` owner, `e` expiry, `d` the packed blob in
base64, since both transports speak text), expired by Redis itself (PEXPIREAT). Same transports
and prefix as the account store."""

from __future__ import annotations

import base64

from core.ports import StoredResponse
from infra.state.redis import Transport, _Script
from infra.state.response_codec import pack_async, unpack_async

# KEYS[1] response; ARGV: owner, expiry (s), blob, expiry in ms since the epoch
PUT = _Script(
    r"""
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'o', ARGV[1], 'e', ARGV[2], 'd', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
"""
)
# KEYS[1] response; ARGV: owner, now (s)
DELETE = _Script(
    r"""
local found = redis.call('HMGET', KEYS[1], 'o', 'e')
if found[1] ~= ARGV[1] or not found[2] or tonumber(found[2]) <= tonumber(ARGV[2]) then return 0 end
return redis.call('DEL', KEYS[1])
"""
)


class RedisResponseStore:
    """Stored responses under `<prefix>resp:` (the account store's prefix, so one cluster slot)."""

    def __init__(self, transport: Transport, prefix: str) -> None:
        self._t = transport
        self._prefix = prefix + "resp:"

    async def put(self, stored: StoredResponse) -> None:
        blob = base64.b64encode(await pack_async(stored)).decode("ascii")
        at_ms = str(int(stored.expires_at * 1000))
        await self._t.script(
            PUT, [self._prefix + stored.id], [stored.owner, repr(stored.expires_at), blob, at_ms]
        )

    async def get(self, response_id: str, *, owner: str, now: float) -> StoredResponse | None:
        reply = await self._t.command("HMGET", self._prefix + response_id, "o", "e", "d")
        if not reply or reply[0] != owner or reply[1] is None or reply[2] is None:
            return None
        if float(reply[1]) <= now:
            return None
        return await unpack_async(base64.b64decode(reply[2]))

    async def delete(self, response_id: str, *, owner: str, now: float) -> bool:
        return bool(await self._t.script(DELETE, [self._prefix + response_id], [owner, repr(now)]))

    async def aclose(self) -> None:
        return None  # the transport belongs to the account store
