"""An `AccountStore` whose tokens are sealed at rest (see `infra.secrets`).

Wraps any store: tokens are sealed on the way in (`add`, re-sealing `update`) and opened on the
way out (`get`, `list`, `lease`), so the SQLite file, the Redis hashes and the DynamoDB items
hold only ciphertext, while the services above see the same port as before. The account id
still comes from the plain token (`NewAccount.id`), so a re-import is still a duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from core.accounts import (
    Account,
    AccountStatus,
    AccountUpdate,
    ImportReport,
    Lease,
    NewAccount,
)
from core.catalog import Tier
from core.ports import AccountPage, AccountStore, RecordStore
from infra.secrets import Sealer


class SealedAccountStore:
    """`inner` with its tokens sealed by `sealer`. Everything else is the inner store's."""

    def __init__(self, inner: AccountStore, sealer: Sealer) -> None:
        self.inner = inner
        self.sealer = sealer

    def _open(self, account: Account) -> Account:
        return replace(account, token=self.sealer.open(account.token))

    async def add(self, accounts: Sequence[NewAccount], now: float) -> ImportReport:
        sealed = [replace(a, token=self.sealer.seal(a.token), id=a.id) for a in accounts]
        return await self.inner.add(sealed, now)

    async def get(self, account_id: str) -> Account | None:
        account = await self.inner.get(account_id)
        return None if account is None else self._open(account)

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
        page = await self.inner.list(status=status, tier=tier, tag=tag, text=text, cursor=cursor, limit=limit)
        return replace(page, items=[self._open(a) for a in page.items])

    async def update(self, account_id: str, change: AccountUpdate) -> bool:
        if change.token is not None:
            change = replace(change, token=self.sealer.seal(self.sealer.open(change.token)))
        return await self.inner.update(account_id, change)

    async def lease(self, *, mode: str, tiers: Sequence[Tier], now: float, ttl: float) -> Lease | None:
        lease = await self.inner.lease(mode=mode, tiers=tiers, now=now, ttl=ttl)
        return None if lease is None else replace(lease, token=self.sealer.open(lease.token))

    async def rotate(self) -> tuple[int, int]:
        """Re-seal every token not sealed under the current key: (re-sealed, accounts seen)."""
        done = seen = 0
        cursor: str | None = None
        while True:
            page = await self.inner.list(cursor=cursor, limit=200)
            for account in page.items:
                seen += 1
                if self.sealer.needs_rotation(account.token):
                    fresh = self.sealer.seal(self.sealer.open(account.token))
                    done += await self.inner.update(account.id, AccountUpdate(token=fresh))
            cursor = page.next_cursor
            if cursor is None:
                return done, seen

    def __getattr__(self, name: str) -> Any:  # release, remove, set_status, ping, aclose, ...
        return getattr(self.inner, name)


# Record keys whose fields hold secrets: (key prefix, fields sealed).
SEALED_RECORD_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (("clearance:", ("cookies",)),)


class SealedRecordStore:
    """`inner` with the secret fields of some records sealed (clearance cookies, see
    `SEALED_RECORD_FIELDS`); every other record passes as it is."""

    def __init__(self, inner: RecordStore, sealer: Sealer) -> None:
        self.inner = inner
        self.sealer = sealer

    @staticmethod
    def _fields(key: str) -> tuple[str, ...]:
        for prefix, fields in SEALED_RECORD_FIELDS:
            if key.startswith(prefix):
                return fields
        return ()

    async def read(self, key: str, *, now: float) -> tuple[dict[str, Any] | None, int]:
        value, version = await self.inner.read(key, now=now)
        fields = self._fields(key)
        if value is not None and fields:
            value = {
                k: self.sealer.open(v, "record") if k in fields and isinstance(v, str) else v
                for k, v in value.items()
            }
        return value, version

    async def write(
        self, key: str, value: dict[str, Any], *, version: int, now: float, ttl: float | None = None
    ) -> bool:
        fields = self._fields(key)
        if fields:
            value = {
                k: self.sealer.seal(v, "record") if k in fields and isinstance(v, str) else v
                for k, v in value.items()
            }
        return await self.inner.write(key, value, version=version, now=now, ttl=ttl)

    def __getattr__(self, name: str) -> Any:  # count, aclose, ...
        return getattr(self.inner, name)
