"""Client keys: create, list, change and revoke them; authenticate a request; admit it under the
key's limits, shared by every instance through the store's records.

Records (`core.ports.RecordStore`):

    client-key:{id}             the key (hash, limits, allowlist)
    client-key-hash:{sha256}    -> {"id"}: the lookup by presented secret
    client-keys                 -> {"ids": [...]}: the listing
    rpm:{id}:{minute}           a counter per fixed minute window
    day-requests:{id}:{day}     a counter per UTC day
    concurrency:{id}            -> {"held": {ticket: expires_at}}: requests in flight

A revoked key is deleted from the listing and its records emptied (`{"revoked": true}`), so a
cached lookup lasts at most `CACHE_SECONDS` on other instances. A ticket of concurrency comes
back when its request ends (stream end, error or disconnect), or after `lease_ttl` if the
instance died holding it.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import AuthenticationFailed, NotFound, PermissionDenied, RateLimited
from core.keys import ClientKey, day_of, hash_secret, new_key_id, new_secret, seconds_to_midnight
from core.ports import RecordStore
from core.services.records_cas import update
from core.services.usage import UsageLedger

CACHE_SECONDS = 2.0
INDEX = "client-keys"


@dataclass(slots=True)
class Admission:
    """A request let in under a key: headers to add to its response, a concurrency ticket to give back."""

    key: ClientKey
    headers: dict[str, str] = field(default_factory=dict)
    ticket: str | None = None


class KeyService:
    """Args:
    records: the store's records (shared by every instance).
    usage: the usage ledger (daily token limits read it).
    clock: seconds since the epoch.
    ticket_ttl: seconds before a concurrency ticket of a dead instance comes back.
    """

    def __init__(
        self, records: RecordStore, usage: UsageLedger, *, clock: Callable[[], float], ticket_ttl: float
    ) -> None:
        self.records = records
        self.usage = usage
        self.clock = clock
        self.ticket_ttl = ticket_ttl
        self._cache: dict[str, tuple[ClientKey | None, float]] = {}

    # --- the admin side ---------------------------------------------------------------------------

    async def create(self, fields: dict[str, Any]) -> tuple[ClientKey, str]:
        """A new key from checked fields (`name` and the optional limits); returns it and its secret."""
        now = self.clock()
        secret = new_secret()
        key = ClientKey(
            id=new_key_id(),
            name=str(fields.get("name", "")),
            key_hash=hash_secret(secret),
            shown=secret[:10],
            created_at=now,
        ).changed({k: v for k, v in fields.items() if k != "name"})
        await self.records.write(f"client-key:{key.id}", key.record(), version=0, now=now)
        await self.records.write(f"client-key-hash:{key.key_hash}", {"id": key.id}, version=0, now=now)
        await update(self.records, INDEX, lambda v: {"ids": [*((v or {}).get("ids") or []), key.id]}, now=now)
        return key, secret

    async def list(self) -> list[ClientKey]:
        now = self.clock()
        index, _ = await self.records.read(INDEX, now=now)
        keys = []
        for key_id in (index or {}).get("ids") or []:
            key = await self.get(key_id)
            if key is not None:
                keys.append(key)
        return keys

    async def get(self, key_id: str) -> ClientKey | None:
        value, _ = await self.records.read(f"client-key:{key_id}", now=self.clock())
        if value is None or value.get("revoked"):
            return None
        return ClientKey.from_record(value)

    async def change(self, key_id: str, changes: dict[str, Any]) -> ClientKey:
        now = self.clock()
        found: list[ClientKey] = []

        def apply(value: dict[str, Any] | None) -> dict[str, Any] | None:
            if value is None or value.get("revoked"):
                return None
            key = ClientKey.from_record(value).changed(changes)
            found.append(key)
            return key.record()

        await update(self.records, f"client-key:{key_id}", apply, now=now)
        if not found:
            raise NotFound(f"No client key {key_id!r}.", param="id")
        self._cache.pop(found[-1].key_hash, None)
        return found[-1]

    async def revoke(self, key_id: str) -> bool:
        now = self.clock()
        key = await self.get(key_id)
        if key is None:
            return False
        await update(self.records, f"client-key:{key_id}", lambda _: {"revoked": True}, now=now)
        await update(self.records, f"client-key-hash:{key.key_hash}", lambda _: {"revoked": True}, now=now)

        def drop(value: dict[str, Any] | None) -> dict[str, Any]:
            return {"ids": [i for i in (value or {}).get("ids") or [] if i != key_id]}

        await update(self.records, INDEX, drop, now=now)
        self._cache.pop(key.key_hash, None)
        return True

    # --- the request side -------------------------------------------------------------------------

    async def authenticate(self, secret: str) -> ClientKey | None:
        """The key whose secret this is (None if none), cached for `CACHE_SECONDS`."""
        digest = hash_secret(secret)
        now = self.clock()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[1] < CACHE_SECONDS:
            return cached[0]
        key: ClientKey | None = None
        ref, _ = await self.records.read(f"client-key-hash:{digest}", now=now)
        if ref is not None and not ref.get("revoked") and ref.get("id"):
            key = await self.get(str(ref["id"]))
            if key is not None and not secrets.compare_digest(key.key_hash, digest):
                key = None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (key, now)
        return key

    async def admit(self, key: ClientKey) -> Admission:
        """Count the request against the key's limits; raise `RateLimited` (with `Retry-After` and
        the `x-ratelimit-*` headers) or `AuthenticationFailed` (expired) when it may not run."""
        now = self.clock()
        if key.expired(now):
            raise AuthenticationFailed("This API key has expired.", code="key_expired")
        admission = Admission(key)
        if key.rpm is not None:
            minute = int(now // 60)
            used = await self.records.count(f"rpm:{key.id}:{minute}", now=now, window=60)
            reset = 60 - (now % 60)
            admission.headers.update(
                {
                    "x-ratelimit-limit-requests": str(key.rpm),
                    "x-ratelimit-remaining-requests": str(max(0, key.rpm - used)),
                    "x-ratelimit-reset-requests": f"{math.ceil(reset)}s",
                }
            )
            if used > key.rpm:
                raise _limited(f"more than {key.rpm} requests a minute", reset, admission.headers)
        if key.daily_requests is not None:
            used = await self.records.count(
                f"day-requests:{key.id}:{day_of(now)}", now=now, window=86400 + 60
            )
            if used > key.daily_requests:
                raise _limited(
                    f"more than {key.daily_requests} requests today",
                    seconds_to_midnight(now),
                    admission.headers,
                )
        if key.daily_tokens is not None:
            spent = await self.usage.tokens_today(key.id)
            if spent >= key.daily_tokens:
                raise _limited(
                    f"{key.daily_tokens} tokens today", seconds_to_midnight(now), admission.headers
                )
        if key.concurrency is not None:
            admission.ticket = await self._take_ticket(key, now)
            if admission.ticket is None:
                raise _limited(f"more than {key.concurrency} requests at once", 1, admission.headers)
        return admission

    async def release(self, admission: Admission) -> None:
        """Give back the admission's concurrency ticket (idempotent)."""
        ticket, admission.ticket = admission.ticket, None
        if ticket is None:
            return
        now = self.clock()

        def drop(value: dict[str, Any] | None) -> dict[str, Any] | None:
            held = dict((value or {}).get("held") or {})
            if held.pop(ticket, None) is None:
                return None
            return {"held": held}

        await update(self.records, f"concurrency:{admission.key.id}", drop, now=now)

    async def _take_ticket(self, key: ClientKey, now: float) -> str | None:
        ticket = secrets.token_hex(8)
        taken = False
        limit = key.concurrency or 0

        def take(value: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal taken
            held = {t: exp for t, exp in ((value or {}).get("held") or {}).items() if exp > now}
            taken = len(held) < limit
            if not taken:
                return {"held": held} if len(held) != len((value or {}).get("held") or {}) else None
            held[ticket] = now + self.ticket_ttl
            return {"held": held}

        await update(self.records, f"concurrency:{key.id}", take, now=now)
        return ticket if taken else None


def allow_model(key: ClientKey | None, model: str) -> None:
    """Raise `PermissionDenied` unless the key may use `model` (as the client named it)."""
    if key is not None and not key.allows(model):
        raise PermissionDenied(
            f"This API key may not use the model {model!r}.", param="model", code="model_not_allowed"
        )


def _limited(what: str, retry_after: float, headers: dict[str, str]) -> RateLimited:
    seconds = max(1, math.ceil(retry_after))
    return RateLimited(
        f"Rate limit reached for this API key: {what}. Try again in {seconds} s.",
        code="key_rate_limited",
        headers={**headers, "retry-after": str(seconds), "x-ratelimit-remaining-requests": "0"}
        if "x-ratelimit-limit-requests" in headers
        else {"retry-after": str(seconds)},
    )
