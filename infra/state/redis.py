"""The account store on Redis: Lua scripts over one of two transports.

Every change to the pool is one script (`redis_lua.py` draws the keys), so a lease or a
release is one round trip and atomic whatever the transport:

* `UpstashTransport`: the `upstash-redis` REST client (the serverless default: no connection
  to keep, HTTPS per call);
* `TcpTransport`: redis-py's asyncio client over TCP or TLS (self-hosted Redis or Valkey,
  ElastiCache).

Scripts run by SHA (`EVALSHA`), falling back to `EVAL` once when the server has not seen them.
Every call has a deadline; a store that cannot be reached raises `StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, Self

from core.accounts import (
    Account,
    AccountStatus,
    AccountUpdate,
    ImportReport,
    Lease,
    NewAccount,
    Outcome,
    Quota,
    TierSource,
    ascii_lower,
    default_quotas,
)
from core.catalog import TIER_ORDER, Tier
from core.errors import StoreUnavailable
from core.ports import AccountPage
from infra.state import redis_lua

PICK_WINDOW = 8  # candidates read per tier per lease; ties among them are broken at random
SWEEP_LIMIT = 64  # due leases, cooling ends and window ends handled per lease, each
LIST_SCAN_CAP = 5000  # ids examined per listing page when filters are combined
DEFAULT_PREFIX = "{gg}:"


class _Script:
    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - the name Redis gives a script


SCRIPTS = {
    name: _Script(getattr(redis_lua, name))
    for name in (
        "LEASE",
        "RELEASE",
        "ADD",
        "SET_STATUS",
        "SET_QUOTA",
        "UPDATE",
        "REMOVE",
        "LIST",
        "CLAIM_REFRESH",
        "DUE",
    )
}


class Transport(Protocol):
    """One way of sending commands to Redis; replies as RESP2 shapes with str for strings."""

    async def command(self, *args: str) -> Any: ...

    async def script(self, script: _Script, keys: list[str], args: list[str]) -> Any: ...

    async def aclose(self) -> None: ...


def _is_noscript(exc: BaseException) -> bool:
    return "NOSCRIPT" in str(exc)


class TcpTransport:
    """redis-py's asyncio client: `redis://` or `rediss://` (TLS)."""

    def __init__(self, url: str, *, timeout: float = 5.0, client: Any = None) -> None:
        if client is None:
            import redis.asyncio as aioredis

            client = aioredis.Redis.from_url(
                url,
                decode_responses=True,
                socket_timeout=timeout,
                socket_connect_timeout=min(timeout, 3.0),
                retry_on_timeout=False,
                health_check_interval=30,
            )
        self._client = client
        self._timeout = timeout

    async def command(self, *args: str) -> Any:
        return await self._call(self._client.execute_command(*args))

    async def script(self, script: _Script, keys: list[str], args: list[str]) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return await self._call(self._client.evalsha(script.sha, len(keys), *keys, *args))
        except NoScriptError:
            return await self._call(self._client.eval(script.text, len(keys), *keys, *args))

    async def _call(self, awaitable: Any) -> Any:
        from redis import exceptions as rexc

        try:
            return await asyncio.wait_for(awaitable, self._timeout)
        except rexc.NoScriptError:
            raise
        except (rexc.ConnectionError, rexc.TimeoutError, TimeoutError, OSError) as exc:
            raise StoreUnavailable(f"The account store is unavailable ({type(exc).__name__}).") from None
        except rexc.ResponseError as exc:
            raise StoreUnavailable(f"The account store refused a command ({_first_words(exc)}).") from None

    async def aclose(self) -> None:
        await self._client.aclose()


class UpstashTransport:
    """The `upstash-redis` REST client (JSON over HTTPS, one request per call)."""

    def __init__(self, url: str, token: str, *, timeout: float = 5.0, client: Any = None) -> None:
        if client is None:
            import httpx
            from upstash_redis.asyncio import Redis as UpstashRedis

            client = UpstashRedis(url, token, rest_retries=0, allow_telemetry=False, read_your_writes=True)
            # The client's own HTTP pool has no timeout at all; give it one.
            client._http._client = httpx.AsyncClient(
                timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0))
            )
        self._client = client
        self._timeout = timeout

    async def command(self, *args: str) -> Any:
        return await self._call(self._client.execute(list(args)))

    async def script(self, script: _Script, keys: list[str], args: list[str]) -> Any:
        try:
            return await self._call(self._client.evalsha(script.sha, keys, args))
        except _NoScript:
            return await self._call(self._client.eval(script.text, keys, args))

    async def _call(self, awaitable: Any) -> Any:
        from upstash_redis.errors import UpstashError

        try:
            return await asyncio.wait_for(awaitable, self._timeout)
        except UpstashError as exc:
            if _is_noscript(exc):
                raise _NoScript from None
            raise StoreUnavailable(f"The account store refused a command ({_first_words(exc)}).") from None
        except (TimeoutError, OSError, ValueError) as exc:
            raise StoreUnavailable(f"The account store is unavailable ({type(exc).__name__}).") from None
        except Exception as exc:  # httpx transport errors and the like
            if type(exc).__module__.startswith(("httpx", "httpcore")):
                raise StoreUnavailable(f"The account store is unavailable ({type(exc).__name__}).") from None
            raise

    async def aclose(self) -> None:
        await self._client.close()


class _NoScript(Exception):
    pass


def _first_words(exc: BaseException) -> str:
    return " ".join(str(exc).split()[:6])[:80]


def _num(value: float) -> str:
    return repr(float(value))


class RedisScripts:
    """A store on a Redis `Transport` under a key `prefix`: each change is one of `SCRIPTS`
    (`_run`), routed by `KEY` to the prefix's slot on a cluster. Construct with `from_url`
    (TCP) or `upstash` (REST)."""

    SCRIPTS: ClassVar[dict[str, _Script]] = {}
    KEY: ClassVar[str] = ""

    def __init__(self, transport: Transport, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._t = transport
        self.prefix = prefix
        self._key = [prefix + self.KEY]

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_PREFIX, timeout: float = 5.0) -> Self:
        return cls(TcpTransport(url, timeout=timeout), prefix=prefix)

    @classmethod
    def upstash(cls, url: str, token: str, *, prefix: str = DEFAULT_PREFIX, timeout: float = 5.0) -> Self:
        return cls(UpstashTransport(url, token, timeout=timeout), prefix=prefix)

    async def _run(self, name: str, *args: str) -> Any:
        return await self._t.script(self.SCRIPTS[name], self._key, [self.prefix, *args])

    async def aclose(self) -> None:
        await self._t.aclose()


class RedisAccountStore(RedisScripts):
    """`AccountStore` on Redis (Upstash REST or TCP)."""

    SCRIPTS = SCRIPTS
    KEY = "meta"

    def __init__(
        self, transport: Transport, *, prefix: str = DEFAULT_PREFIX, rng: random.Random | None = None
    ) -> None:
        super().__init__(transport, prefix=prefix)
        self._rng = rng or random.Random()

    # -- the port -------------------------------------------------------------------------

    async def add(self, accounts: Sequence[NewAccount], now: float) -> ImportReport:
        added = skipped = 0
        batch: list[dict[str, object]] = []
        seen: set[str] = set()
        for new in accounts:
            account_id = new.id
            if account_id in seen:
                skipped += 1
                continue
            seen.add(account_id)
            quotas = default_quotas(new.tier, now)
            batch.append(
                {
                    "id": account_id,
                    "token": new.token,
                    "tier": new.tier.value,
                    "tier_source": new.tier_source.value,
                    "note": new.note,
                    "tags": json.dumps(list(new.tags)),
                    "created_at": _num(now),
                    "quotas": {
                        m: [q.remaining, q.total, q.window_seconds, _num(q.reset_at)]
                        for m, q in quotas.items()
                    },
                }
            )
        for start in range(0, len(batch), 200):
            a, s = await self._run("ADD", json.dumps(batch[start : start + 200]))
            added, skipped = added + int(a), skipped + int(s)
        return ImportReport(added=added, skipped=skipped, invalid=0)

    async def get(self, account_id: str) -> Account | None:
        flat = await self._t.command("HGETALL", f"{self.prefix}acc:{account_id}")
        return _account(account_id, flat) if flat else None

    async def list(
        self,
        *,
        status: AccountStatus | None = None,
        tier: Tier | None = None,
        tag: str | None = None,
        text: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> AccountPage:
        reply = await self._run(
            "LIST",
            status.value if status else "",
            tier.value if tier else "",
            cursor or "",
            str(max(1, limit)),
            str(LIST_SCAN_CAP),
            json.dumps(tag) if tag else "",
            ascii_lower(text) if text else "",
        )
        items = [_account(item[0], item[1]) for item in reply[1:]]
        return AccountPage(items, reply[0] or None)

    async def remove(self, account_id: str) -> bool:
        return bool(await self._run("REMOVE", account_id))

    async def set_status(self, account_id: str, status: AccountStatus, reason: str, now: float) -> bool:
        return bool(await self._run("SET_STATUS", account_id, status.value, reason))

    async def set_quota(self, account_id: str, mode: str, quota: Quota) -> bool:
        return bool(
            await self._run(
                "SET_QUOTA",
                account_id,
                mode,
                str(quota.remaining),
                str(quota.total),
                str(quota.window_seconds),
                _num(quota.reset_at),
            )
        )

    async def update(self, account_id: str, change: AccountUpdate) -> bool:
        fields: dict[str, str] = {}
        if change.tier is not None:
            fields["tier"] = change.tier.value
        if change.tier_source is not None:
            fields["tier_source"] = change.tier_source.value
        if change.note is not None:
            fields["note"] = change.note
        if change.tags is not None:
            fields["tags"] = json.dumps(list(change.tags))
        if change.token is not None:
            fields["token"] = change.token
        return bool(await self._run("UPDATE", account_id, json.dumps(fields)))

    async def lease(self, *, mode: str, tiers: Sequence[Tier], now: float, ttl: float) -> Lease | None:
        ranked = sorted(set(tiers), key=lambda t: t.rank)
        if not ranked:
            return None
        lease_id = "lease_" + uuid.uuid4().hex
        reply = await self._run(
            "LEASE",
            mode,
            ",".join(t.value for t in ranked),
            _num(now),
            _num(ttl),
            lease_id,
            _num(self._rng.random()),
            str(PICK_WINDOW),
            str(SWEEP_LIMIT),
        )
        if not reply:
            return None
        account_id, token, tier = reply
        return Lease(lease_id, account_id, token, Tier(tier), mode, now + ttl)

    async def release(self, lease: Lease, outcome: Outcome, now: float) -> bool:
        q = outcome.quota
        quota_args = (
            ["1", str(q.remaining), str(q.total), str(q.window_seconds), _num(q.reset_at)]
            if q is not None
            else ["0", "0", "0", "0", "0"]
        )
        return bool(
            await self._run(
                "RELEASE",
                lease.id,
                lease.account_id,
                lease.mode,
                _num(now),
                outcome.kind.value,
                outcome.reason,
                _num(outcome.cooling_until),
                "1" if outcome.refund else "0",
                *quota_args,
            )
        )

    async def ping(self) -> None:
        await self._t.command("PING")

    # -- quota upkeep (RefreshLedger) -----------------------------------------------------

    async def due_for_refresh(self, *, now: float, limit: int) -> list[Account]:
        ids = await self._run("DUE", _num(now), str(limit))
        accounts = [await self.get(account_id) for account_id in ids]
        return [a for a in accounts if a is not None]

    async def claim_refresh(
        self, account_id: str, *, now: float, next_at: float, min_interval: float
    ) -> bool:
        return bool(
            await self._run("CLAIM_REFRESH", account_id, _num(now), _num(next_at), _num(min_interval))
        )


_STATUS_BY_VALUE = {s.value: s for s in AccountStatus}
_TIER_BY_VALUE = {t.value: t for t in TIER_ORDER}
_SOURCE_BY_VALUE = {s.value: s for s in TierSource}


def _account(account_id: str, flat: Sequence[str] | dict[str, str]) -> Account:
    h = flat if isinstance(flat, dict) else dict(zip(flat[::2], flat[1::2], strict=True))
    quotas = {
        m: Quota(
            int(float(h[f"r:{m}"])), int(float(h[f"t:{m}"])), int(float(h[f"w:{m}"])), float(h[f"x:{m}"])
        )
        for m in h.get("modes", "").split(",")
        if m
    }
    return Account(
        id=account_id,
        token=h["token"],
        tier=_TIER_BY_VALUE[h["tier"]],
        tier_source=_SOURCE_BY_VALUE[h.get("tier_source", "assumed")],
        status=_STATUS_BY_VALUE[h["status"]],
        note=h.get("note", ""),
        tags=tuple(json.loads(h.get("tags") or "[]")),
        quotas=quotas,
        in_flight=int(h.get("in_flight", 0)),
        cooling_until=float(h.get("cooling_until", 0)),
        reason=h.get("reason", ""),
        created_at=float(h.get("created_at", 0)),
        last_used_at=float(h.get("last_used_at", 0)),
        last_failure_at=float(h.get("last_failure_at", 0)),
        use_count=int(h.get("use_count", 0)),
        fail_count=int(h.get("fail_count", 0)),
    )
