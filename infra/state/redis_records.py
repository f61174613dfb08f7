"""`RecordStore` on Redis: one hash per record (`v` version, `d` JSON), written by a script so a
compare-and-set is atomic; expiry is Redis's own (PEXPIRE). Same transports as the account store."""

from __future__ import annotations

import json
from typing import Any

from infra.state.redis import Transport, _Script

# KEYS[1] record; ARGV: expected version, JSON, ttl in ms (0: none)
WRITE = _Script(
    r"""
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if cur ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', cur + 1, 'd', ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) else redis.call('PERSIST', KEYS[1]) end
return 1
"""
)
# KEYS[1] counter; ARGV: window in ms
COUNT = _Script(
    r"""
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""
)


class RedisRecordStore:
    """Records under `<prefix>rec:` (the account store's prefix, so one cluster slot)."""

    def __init__(self, transport: Transport, prefix: str) -> None:
        self._t = transport
        self._prefix = prefix + "rec:"

    async def read(self, key: str, *, now: float) -> tuple[dict[str, Any] | None, int]:
        reply = await self._t.command("HMGET", self._prefix + key, "v", "d")
        if not reply or reply[0] is None or reply[1] is None:
            return None, 0
        return json.loads(reply[1]), int(reply[0])

    async def write(
        self, key: str, value: dict[str, Any], *, version: int, now: float, ttl: float | None = None
    ) -> bool:
        ms = 0 if ttl is None else max(1, int(ttl * 1000))
        text = json.dumps(value, separators=(",", ":"))
        return bool(await self._t.script(WRITE, [self._prefix + key], [str(version), text, str(ms)]))

    async def count(self, key: str, *, now: float, window: float) -> int:
        ms = max(1, int(window * 1000))
        return int(await self._t.script(COUNT, [self._prefix + "n:" + key], [str(ms)]))

    async def aclose(self) -> None:
        return None  # the transport belongs to the account store
