"""Ports: what the core needs from the outside world, in the core's own words.

Adapters in `infra/` implement these; `functions/_wiring.py` chooses which. State ports speak
the domain (lease, release, snapshot), never Redis or DynamoDB words: a claim is one atomic
step in whatever the store offers (a transaction, a Lua script, a conditional write).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.accounts import Account, AccountStatus, ImportReport, Lease, NewAccount, Outcome, Quota
from core.catalog import Tier


class Clock(Protocol):
    def __call__(self) -> float:
        """Seconds since the epoch."""
        ...


@dataclass(frozen=True, slots=True)
class AccountPage:
    items: list[Account]
    next_cursor: str | None


class AccountStore(Protocol):
    """The pool of accounts, shared by every instance of the gateway.

    Contract (one suite in tests/contract runs it over every adapter):

    * `lease` picks, among ACTIVE accounts of `tiers` (and COOLING ones whose time has passed),
      one with quota left in `mode`'s window: lowest tier first, then more remaining quota,
      fewer in flight, least recently used, random among equals. In one atomic step it
      refills an ended window, takes one unit, counts the lease in flight and records the
      lease with `expires_at = now + ttl`. No candidate: None.
    * A lease not released by `expires_at` is reclaimed by later `lease` calls: its in-flight
      count returns; its quota unit stays spent (the request may have reached the upstream).
    * `release` applies the outcome once: a second release of the same lease, or a release
      after expiry reclaimed it, changes nothing and returns False.
    * Outcomes move the account: SUCCESS -> ACTIVE (and the reported window, if any);
      RATE_LIMITED -> COOLING until `outcome.cooling_until`, that mode's window emptied;
      EXPIRED / BLOCKED -> that status; CHALLENGE, TRANSIENT, CANCELLED leave the status.
      `refund` returns the reserved unit. The upstream's reason and the time are kept.
    * Failures of the store itself raise `core.errors.StoreUnavailable`, never hang.
    """

    async def add(self, accounts: Sequence[NewAccount], now: float) -> ImportReport:
        """Add accounts; an account whose token is already present is skipped."""
        ...

    async def get(self, account_id: str) -> Account | None: ...

    async def list(
        self,
        *,
        status: AccountStatus | None = None,
        tier: Tier | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> AccountPage:
        """Accounts ordered by id, filtered, a page at a time."""
        ...

    async def remove(self, account_id: str) -> bool: ...

    async def set_status(self, account_id: str, status: AccountStatus, reason: str, now: float) -> bool:
        """Operator action: disable, enable (ACTIVE clears cooling and the reason)."""
        ...

    async def set_quota(self, account_id: str, mode: str, quota: Quota) -> bool:
        """Replace one mode's window with what the upstream reported."""
        ...

    async def lease(self, *, mode: str, tiers: Sequence[Tier], now: float, ttl: float) -> Lease | None: ...

    async def release(self, lease: Lease, outcome: Outcome, now: float) -> bool: ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""
        ...

    async def close(self) -> None: ...


class UpstreamStream(Protocol):
    """An open upstream response body: raw byte chunks as the transport read them.

    Iterating raises `core.protocol.classify.UpstreamFailure` on a transport failure (reset,
    timeout). `aclose()` aborts the transfer at once (the client went away) and is idempotent.
    """

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    """Grok's web app, as the chat service needs it. Foreign errors never leave the adapter:
    non-200 answers and transport failures are raised as a classified `UpstreamFailure`.
    `token` is the account's `sso` cookie value: adapters must never log it.
    """

    async def chat(self, token: str, body: dict[str, Any]) -> UpstreamStream:
        """POST a new conversation (E1) and return its stream once the status is 200."""
        ...

    async def upload(self, token: str, name: str, mime: str, data: bytes) -> str:
        """Upload one attachment (E5) and return the id to put in `fileAttachments`."""
        ...

    async def download(self, token: str, url: str, max_bytes: int) -> tuple[bytes, str]:
        """Fetch a generated asset (E9) with the account's cookie: (bytes, content type)."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FetchedFile:
    data: bytes
    mime: str  # the Content-Type the server sent, without parameters ("" if none)


class UrlFetcher(Protocol):
    """Fetches client-supplied URLs with no account cookie, behind an SSRF guard and limits.

    Refusals (private target, too large, too slow, HTTP error) raise `core.errors.InvalidRequest`
    whose `param` is the one given.
    """

    async def fetch(self, url: str, *, param: str = "url") -> FetchedFile: ...
