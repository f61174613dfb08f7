"""Ports: what the core needs from the outside world, in the core's own words.

Adapters in `infra/` implement these; `functions/_wiring.py` chooses which. State ports speak
the domain (lease, release, snapshot), never Redis or DynamoDB words: a claim is one atomic
step in whatever the store offers (a transaction, a Lua script, a conditional write).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from core.accounts import (
    Account,
    AccountStatus,
    AccountUpdate,
    ImportReport,
    Lease,
    NewAccount,
    Outcome,
    Quota,
)
from core.catalog import Tier


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

    Optional: `release_nowait(lease, outcome, now) -> bool | None`, a `release` done on the
    calling thread when that is possible at once, else None (the embedded store has it).
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
        tag: str | None = None,
        text: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> AccountPage:
        """Accounts ordered by id, filtered, a page at a time.

        `tag` keeps accounts carrying that tag; `text` keeps those whose id, note or a tag
        contains it (ASCII case-insensitive): `core.accounts.matches` is the reference.
        """
        ...

    async def remove(self, account_id: str) -> bool: ...

    async def set_status(self, account_id: str, status: AccountStatus, reason: str, now: float) -> bool:
        """Operator action: disable, enable (ACTIVE clears cooling and the reason)."""
        ...

    async def set_quota(self, account_id: str, mode: str, quota: Quota) -> bool:
        """Replace one mode's window with what the upstream reported."""
        ...

    async def update(self, account_id: str, change: AccountUpdate) -> bool:
        """Change the tier (and its source), note or tags; a new tier takes effect on the next lease
        (the account is ranked in its new tier's pool at once). False when there is no such account."""
        ...

    async def lease(self, *, mode: str, tiers: Sequence[Tier], now: float, ttl: float) -> Lease | None: ...

    async def release(self, lease: Lease, outcome: Outcome, now: float) -> bool: ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""
        ...

    async def aclose(self) -> None: ...


class RecordStore(Protocol):
    """Small JSON documents shared by every instance: the console's batches, settings overrides
    and login counters. Lives in the account store's backend (same file, server or table).

    * `read` returns the record and its version (None and 0 when absent or expired).
    * `write` is a compare-and-set: it stores `value` only if the record is still at `version`
      (0: absent), and the record's version becomes `version + 1`; a lost race returns False.
      `ttl` seconds after `now` the record expires (None: never).
    * `count` adds one to a counter that expires `window` seconds after its first count and
      returns the new count, atomically.
    """

    async def read(self, key: str, *, now: float) -> tuple[dict[str, Any] | None, int]: ...

    async def write(
        self, key: str, value: dict[str, Any], *, version: int, now: float, ttl: float | None = None
    ) -> bool: ...

    async def count(self, key: str, *, now: float, window: float) -> int: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A Responses API response kept for `GET /v1/responses/{id}` and `previous_response_id`.

    `owner` names who may read it: a hash of the API key that made it ("" on an open gateway),
    ready to name a client once clients have their own keys. `response` is the response object
    as returned; `input_items` the request's own input items (with ids); `context` the items
    that went before them (the replayed chain of `previous_response_id`), so a response stays
    replayable after the ones before it expire.
    """

    id: str
    owner: str
    created_at: float
    expires_at: float
    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    context: list[dict[str, Any]] = field(default_factory=list)


class ResponseStore(Protocol):
    """Stored responses, in the account store's backend (same file, Redis prefix or table).

    * `put` keeps the response until its `expires_at` (replacing one of the same id).
    * `get` returns it, or None when absent, expired, deleted or `owner` is not its owner.
    * `delete` removes it when it exists for `owner`: True then, False otherwise.
    * Failures of the store itself raise `core.errors.StoreUnavailable`.
    """

    async def put(self, stored: StoredResponse) -> None: ...

    async def get(self, response_id: str, *, owner: str, now: float) -> StoredResponse | None: ...

    async def delete(self, response_id: str, *, owner: str, now: float) -> bool: ...

    async def aclose(self) -> None: ...


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

    async def list_assets(self, token: str, page_token: str = "") -> Any:
        """One page of the account's assets (E7), newest first, as the upstream's JSON
        (`nextPageToken` names the next page)."""
        ...

    async def upload_file(self, token: str, name: str, mime: str, data: bytes) -> tuple[str, str]:
        """Upload one file (E5) and return (its id, its asset path `users/…/content`)."""
        ...

    async def media_post(self, token: str, body: dict[str, Any]) -> Any:
        """Create a media post (E13) and return the upstream's JSON answer."""
        ...

    async def aclose(self) -> None: ...


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


class QuotaRefreshStore(Protocol):
    """What quota upkeep needs of the account store, besides `AccountStore.set_quota`.

    Every store keeps, per account, when its next scheduled refresh is due and when a refresh
    was last claimed. A claim is atomic: of several callers (a cron delivered twice, an
    operator's "refresh now"), one wins and the others are told False.
    """

    async def due_for_refresh(self, *, now: float, limit: int) -> list[Account]:
        """Accounts whose scheduled refresh is due at `now` (new accounts at once), earliest first."""
        ...

    async def claim_refresh(
        self, account_id: str, *, now: float, next_at: float, min_interval: float
    ) -> bool:
        """Claim the refresh unless one was claimed less than `min_interval` ago; the next is due at `next_at`."""
        ...


# --- media and jobs (images, videos) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaBlob:
    """A stored file opened for reading: its chunks arrive in order; `size` in bytes;
    `created_at` when it was stored (0 if the store cannot tell)."""

    chunks: AsyncIterator[bytes]
    mime: str
    size: int
    created_at: float = 0.0


class MediaStore(Protocol):
    """Where generated images and videos are kept and how clients reach them.

    `put` returns an opaque id (safe in a URL path). `link` returns a URL a client may GET
    without an API key until it expires (`ttl` seconds, the store's default when None): an
    HMAC-signed gateway URL on `base_url` (local folder) or a presigned URL (S3). `redirect`
    is a URL to send an authenticated client to instead of streaming the bytes through the
    gateway (S3), or None (the gateway serves them: `open`).
    """

    async def put(self, data: bytes, mime: str) -> str: ...

    async def link(self, media_id: str, base_url: str, ttl: int | None = None) -> str: ...

    async def redirect(self, media_id: str) -> str | None: ...

    async def open(self, media_id: str) -> MediaBlob | None:
        """The file, or None if there is no such id."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class MediaItem:
    """One stored file as the console lists it: id, size in bytes, when it was stored."""

    id: str
    size: int
    created_at: float


class MediaInventory(Protocol):
    """What the console needs of a `MediaStore` besides serving files (both stores have it)."""

    async def inventory(self, *, limit: int = 500) -> tuple[list[MediaItem], int, int]:
        """The newest `limit` files, and the count and total bytes of all of them."""
        ...

    async def delete(self, media_id: str) -> bool: ...


class JobStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Job:
    """One asynchronous generation (a video): what was asked, where it stands, what it made.

    `params` is what the runner needs (JSON-safe); `result` names stored media once completed.
    `owner` is who may see the job (a hash of the API key that made it; "" when the gateway is
    open). `state` is the runner's own record between steps (which account, what the upstream
    said), so any runner can take the next step. `claim_id`/`claim_expires_at` belong to the
    runner that holds the job right now; a job released between steps has no claim and is due
    again at `claim_expires_at`.
    """

    id: str
    kind: str
    status: JobStatus
    params: dict[str, Any]
    created_at: float
    updated_at: float
    progress: int = 0
    result: dict[str, Any] = field(default_factory=dict)
    error_code: str = ""
    error_message: str = ""
    completed_at: float | None = None
    attempts: int = 0
    claim_id: str = ""
    claim_expires_at: float = 0.0
    owner: str = ""
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobClaim:
    """The right to run one job until `expires_at` (extended by every `progress` call)."""

    job_id: str
    claim_id: str
    attempt: int
    expires_at: float


class JobStore(Protocol):
    """Asynchronous jobs shared by every instance (one contract suite in tests/contract runs it
    over every adapter: SQLite, Redis over TCP, Redis over Upstash REST, DynamoDB).

    * `create` stores a job unless one with its id exists, and returns the stored job either
      way: ids derived from a client's idempotency key make a repeated create return the first.
    * `claim` is one atomic conditional write. A QUEUED job, an IN_PROGRESS one released between
      steps whose time has come, or one whose claim expired (its runner died) becomes
      IN_PROGRESS under a new claim. Of concurrent callers exactly one wins; the others get
      None. Taking over from a dead runner counts an attempt; a job whose attempts are used up
      is marked FAILED by the claim that finds it, so no job stays in progress forever.
    * `progress`, `advance`, `complete` and `fail` apply only while the claim is the job's
      current claim (a runner that lost its claim cannot overwrite its successor) and return
      False otherwise. `progress` never lowers the progress, extends the claim by `ttl` and may
      replace `state`; `advance` stores `state`, drops the claim and makes the job due at
      `due_at` (the next step of a runner that works in steps).
    * `due` lists job ids a runner should claim at `now`, oldest first.
    * `list` pages one owner's jobs by creation time (then id), after the job `after`.
    """

    async def create(self, job: Job) -> Job: ...

    async def get(self, job_id: str) -> Job | None: ...

    async def delete(self, job_id: str) -> bool: ...

    async def claim(self, job_id: str, *, now: float, ttl: float, max_attempts: int) -> JobClaim | None: ...

    async def progress(
        self,
        claim: JobClaim,
        progress: int,
        *,
        now: float,
        ttl: float,
        state: dict[str, Any] | None = None,
    ) -> bool: ...

    async def advance(
        self, claim: JobClaim, state: dict[str, Any], *, progress: int, now: float, due_at: float
    ) -> bool: ...

    async def complete(self, claim: JobClaim, result: dict[str, Any], *, now: float) -> bool: ...

    async def fail(self, claim: JobClaim, code: str, message: str, *, now: float) -> bool: ...

    async def due(self, *, now: float, limit: int) -> list[str]: ...

    async def aclose(self) -> None: ...

    # Last: inside the class body, `list` names this method from here on.
    async def list(
        self, owner: str, *, after: str | None = None, limit: int = 20, order: str = "desc"
    ) -> list[Job]: ...


class ImagineSocket(Protocol):
    """An open Imagine WebSocket (E4): JSON messages both ways. Iterating yields decoded frames
    and raises `UpstreamFailure` on a transport failure or an idle timeout; `aclose()` is idempotent.
    """

    async def send(self, message: dict[str, Any]) -> None: ...

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...

    async def aclose(self) -> None: ...


class ImagineUpstream(Protocol):
    """Grok's Imagine endpoints besides E1: the image WebSocket (E4) and Imagine uploads (E6).
    A refused handshake or upload raises a classified `UpstreamFailure`; `token` is never logged.
    """

    async def connect(self, token: str) -> ImagineSocket: ...

    async def upload(self, token: str, name: str, mime: str, data: bytes) -> str:
        """Upload an Imagine input (E6, `IMAGINE_SELF_UPLOAD_FILE_SOURCE`); returns its file id."""
        ...

    async def aclose(self) -> None: ...
