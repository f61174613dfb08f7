"""The composition root: Settings -> adapters -> services, built once per process.

This is the only module that knows which adapter backs which port. What it caches per
process is safe to lose (settings, an HTTP session, a store client): any instance may serve
any request, because shared state lives in the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.ports import (
    AccountStore,
    FetchedFile,
    ImagineUpstream,
    JobStore,
    MediaStore,
    RecordStore,
    Upstream,
    UrlFetcher,
)
from core.settings import Settings, parse_dotenv
from core.transcode.sealed import Sealer

if TYPE_CHECKING:  # each property imports what it builds: a deployable pays only for what it uses
    from core.services.chat import ChatService
    from core.services.images import ImageService
    from core.services.keys import KeyService
    from core.services.stored_responses import StoredResponses
    from core.services.usage import UsageLedger
    from core.services.videos import VideoService
    from infra.jobs.inline import InlineRunner
    from infra.upstream.account_calls import UpkeepCalls
    from infra.upstream.client import CurlUpstream
    from infra.upstream.livekit import LiveKitClient
    from infra.upstream.rate_limits import RateLimitClient

log = logging.getLogger("grokgate")
OVERRIDES_KEY = "settings:overrides"
OVERRIDES_TTL = 3.0  # seconds an instance may serve with overrides it has not re-read


def load_settings(environ: Mapping[str, str] | None = None, dotenv: str | Path | None = ".env") -> Settings:
    """Settings from the environment, over an optional `.env` file (the environment wins)."""
    env: dict[str, str] = {}
    if dotenv is not None and Path(dotenv).is_file():
        env.update(parse_dotenv(Path(dotenv).read_text()))
    env.update(os.environ if environ is None else environ)
    if env.get("SSM_PARAMETER_NAMES"):  # Lambda: secrets from SSM, read on first use (INVOKE phase)
        from infra.aws.parameters import fetch_parameters

        env.update(fetch_parameters(env))
    return Settings.from_env(env)


def open_store(settings: Settings) -> AccountStore:
    """The account store `settings.store` names; its tokens sealed when `secret_key` is set."""
    store: AccountStore
    if settings.store.startswith("sqlite:///"):
        from infra.state.sqlite import SQLiteAccountStore

        store = SQLiteAccountStore.from_url(settings.store)
    else:
        from infra.state.factory import open_account_store  # the distributed stores, when chosen

        store = open_account_store(settings)
    if settings.secret_key:
        from infra.secrets import Sealer
        from infra.state.sealed import SealedAccountStore

        store = SealedAccountStore(store, Sealer(settings.secret_key))
    return store


@dataclass
class Deps:
    """Everything a route needs: the settings, and every adapter and service as a typed property
    built on first use (its imports too), so a deployable pays only for what it uses.

    A property caches what it builds on the instance (`cached_property`): `built()` lists those
    values in the order they were built, for `apply_overrides` and `aclose`.
    """

    settings: Settings
    clock: Callable[[], float] = time.time
    _store: AccountStore | None = None
    # The settings as deployed; `settings` is these with the console's overrides (read from the
    # store at most every OVERRIDES_TTL seconds: a small cached read, safe to lose).
    base_settings: Settings | None = None
    _overrides_next: float = 0.0
    _overrides_version: int = 0
    # Answers still opening after their early byte (functions/_answer.py): a shutdown ends them too.
    opening_answers: set[asyncio.Future[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.base_settings is None:
            self.base_settings = self.settings

    def overrides_due(self) -> bool:
        return time.monotonic() >= self._overrides_next

    async def refresh_overrides(self) -> None:
        """Apply the overrides kept in the store if they changed since the last read."""
        from core.errors import GatewayError

        self._overrides_next = time.monotonic() + OVERRIDES_TTL
        try:
            value, version = await self.records.read(OVERRIDES_KEY, now=self.clock())
        except GatewayError as exc:  # the store is down: keep what we have, try again later
            log.warning("settings overrides unreadable: %s", exc.message)
            return
        if version != self._overrides_version:
            self._overrides_version = version
            self.apply_overrides(value or {})

    def apply_overrides(self, overrides: Mapping[str, Any]) -> None:
        """`settings` := the deployed settings with `overrides`; services built on the old object follow."""
        from core.settings import SettingsError

        assert self.base_settings is not None
        try:
            effective = self.base_settings.with_overrides(overrides)
        except SettingsError as exc:  # written by a newer or older version: keep the deployed values
            log.warning("settings overrides ignored: %s", exc)
            effective = self.base_settings
        old, self.settings = self.settings, effective
        for value in self.built():
            if getattr(value, "settings", None) is old:
                value.settings = effective

    def built(self) -> list[Any]:
        """What the properties have built so far, oldest first (a dependency before its users)."""
        return [value for name, value in vars(self).items() if name in _BUILT_BY_PROPERTY]

    # The stores.

    @property
    def store(self) -> AccountStore:
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store

    @cached_property
    def records(self) -> RecordStore:
        """The console's records (batches, overrides, login counters), beside the account store."""
        from infra.state.factory import records_for

        return records_for(self.store)

    @cached_property
    def responses(self) -> StoredResponses:
        """Stored Responses API responses, beside the account store (built on first use, so a
        process that stores none never imports the adapter)."""
        from core.services.stored_responses import StoredResponses
        from infra.state.factory import responses_for

        return StoredResponses(responses_for(self.store), ttl=self.settings.responses_ttl, clock=self.clock)

    @cached_property
    def media_store(self) -> MediaStore:
        """The process's media store: `s3://bucket/prefix` or a local folder."""
        if self.settings.media.startswith("s3://"):
            from infra.media.s3 import S3MediaStore

            return S3MediaStore.from_settings(self.settings)
        from infra.media.local import LocalMediaStore

        return LocalMediaStore.from_settings(self.settings, clock=self.clock)

    @cached_property
    def job_store(self) -> JobStore:
        """`GROKGATE_JOBS`, else the job store beside the account store (infra/jobs/factory.py)."""
        from infra.jobs.factory import open_job_store

        return open_job_store(self.settings)

    # The upstream and the other outside services.

    @cached_property
    def upstream(self) -> Upstream:
        """Grok's web app over curl_cffi: one warm session per process (per event loop). With
        `GROKGATE_CHAT_TRANSPORT=ws|auto` the chat call may take the gateway WebSocket instead."""
        from infra.state.factory import records_for
        from infra.upstream.client import CurlUpstream

        try:
            records = records_for(self.store)
        except TypeError:  # a store without records (a test double): shared state stays per process
            records = None
        # The records also keep the upstream's shared state: statsig inputs, clearances, egress health.
        rest = CurlUpstream(self.settings, records=records)
        if self.settings.chat_transport == "rest":
            return rest
        from infra.upstream.chat_router import ChatTransports

        return ChatTransports(self.settings, rest, records=records)

    @property
    def rest_upstream(self) -> CurlUpstream:
        """The REST client itself, also when a chat-transport router is in front of it."""
        rest: CurlUpstream = getattr(self.upstream, "rest", self.upstream)
        return rest

    @cached_property
    def imagine(self) -> ImagineUpstream:
        """The Imagine WebSocket client, riding on the REST client's curl_cffi session."""
        from infra.upstream.client import CurlUpstream
        from infra.upstream.imagine_ws import WsImagine

        upstream = self.rest_upstream
        assert isinstance(upstream, CurlUpstream), "the Imagine client rides on the curl_cffi session"
        return WsImagine(self.settings, upstream)

    @cached_property
    def rate_limits(self) -> RateLimitClient:
        """The rate-limits call (quota windows and tier detection), one client per process."""
        from infra.upstream.rate_limits import RateLimitClient

        return RateLimitClient(self.settings, upstream=self.upstream)

    @cached_property
    def upkeep_calls(self) -> UpkeepCalls:
        """The account upkeep calls (ToS, birth date, NSFW) over the REST client."""
        from infra.upstream.account_calls import UpkeepCalls

        return UpkeepCalls(self.rest_upstream)

    @cached_property
    def livekit(self) -> LiveKitClient:
        """Voice tokens for the console's voice page."""
        from infra.upstream.livekit import LiveKitClient

        return LiveKitClient(self.settings, upstream=self.upstream)

    @cached_property
    def fetcher(self) -> UrlFetcher:
        """Client-supplied URL fetches: no account cookie, behind the SSRF guard. Built (and httpx
        imported) on the first client URL, so a process that never sees one never pays for it."""
        return _DeferredFetcher(self.settings)

    @cached_property
    def stepfunctions(self) -> Any:
        """The Step Functions client (boto3) that starts video executions."""
        from infra.jobs.stepfunctions import client

        return client()

    @cached_property
    def sealer(self) -> Sealer:
        """Signs and checks the `encrypted_content` of Responses reasoning items."""
        return Sealer(reasoning_key(self.settings))

    # The services.

    @cached_property
    def chat_service(self) -> ChatService:
        """The process's chat service, shared by the three chat dialects (and images)."""
        from core.services.chat import ChatService

        return ChatService(self.settings, self.store, self.upstream, fetcher=self.fetcher, clock=self.clock)

    @cached_property
    def image_service(self) -> ImageService:
        from core.services.images import ImageService

        return ImageService(
            self.settings, self.chat_service, self.upstream, self.imagine, self.media_store, clock=self.clock
        )

    @cached_property
    def video_service(self) -> VideoService:
        from core.services.videos import VideoService

        return VideoService(
            self.settings, self.store, self.upstream, self.media_store, self.job_store, clock=self.clock
        )

    @property
    def inline_runner(self) -> InlineRunner | None:
        """The local process's video runner (None unless `video_runner=inline`)."""
        if self.settings.video_runner != "inline":
            return None
        return self._inline_runner

    @cached_property
    def _inline_runner(self) -> InlineRunner:
        from infra.jobs.inline import InlineRunner

        # Built after the video service, so closed before it (`aclose` goes newest first).
        return InlineRunner(self.video_service)

    @cached_property
    def key_service(self) -> KeyService:
        """Client keys: lookup, limits and tickets (functions/_access.py)."""
        from core.services.keys import KeyService

        return KeyService(
            self.records, self.usage_ledger, clock=self.clock, ticket_ttl=self.settings.lease_ttl
        )

    @cached_property
    def usage_ledger(self) -> UsageLedger:
        from core.services.usage import UsageLedger

        return UsageLedger(self.records, clock=self.clock, retention_days=self.settings.usage_retention_days)

    async def aclose(self) -> None:
        """Flush what holds unwritten state while the store is open, close the store, then close
        the rest, newest first (a user before what it uses)."""
        built = self.built()
        for value in built:
            flush = getattr(value, "flush", None)
            if flush is not None:
                try:
                    await flush()
                except Exception as exc:
                    log.warning("could not flush %s at shutdown: %s", type(value).__name__, exc)
        if self._store is not None:
            await self._store.aclose()
            self._store = None
        for value in reversed(built):
            closer = getattr(value, "aclose", None)
            if closer is not None:
                await closer()
        for name in _BUILT_BY_PROPERTY:
            vars(self).pop(name, None)


_BUILT_BY_PROPERTY = frozenset(
    name for name, value in vars(Deps).items() if isinstance(value, cached_property)
)


def reasoning_key(settings: Settings) -> bytes:
    """The reasoning-item key: the same on every instance of one deployment (a token issued by
    one is accepted by the next), never a constant."""
    label = b"grokgate reasoning items v1"
    secret = settings.reasoning_secret or settings.media_secret or settings.admin_key
    if secret is None and settings.api_keys:
        secret = "\n".join(sorted(settings.api_keys))
    if secret is not None:
        return hmac.new(secret.encode(), label, hashlib.sha256).digest()
    if not settings.media.startswith("s3://"):
        from infra.media.local import media_secret

        return hmac.new(media_secret(settings, Path(settings.media)), label, hashlib.sha256).digest()
    log.warning("no reasoning secret, admin key or API key: reasoning items verify on this instance only")
    return secrets.token_bytes(32)


class _DeferredFetcher:
    """A `UrlFetcher` that builds the real one (`infra.fetch.SafeFetcher`) on first use."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._real: Any = None

    async def fetch(self, url: str, *, param: str = "url") -> FetchedFile:
        if self._real is None:
            from infra.fetch import SafeFetcher

            self._real = SafeFetcher(self._settings)
        fetched: FetchedFile = await self._real.fetch(url, param=param)
        return fetched

    async def aclose(self) -> None:
        if self._real is not None:
            await self._real.aclose()
            self._real = None


_deps: Deps | None = None


def configure_logging(settings: Settings) -> None:
    """The root logger at the settings' level, as text lines or JSON objects (`GROKGATE_LOG_FORMAT`)."""
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        from functions._access import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    # As logging.basicConfig: a process whose logging is already set up (a test runner, a host
    # application) keeps its handlers.
    logging.basicConfig(level=settings.log_level, handlers=[handler])


def get_deps() -> Deps:
    """The process-wide dependencies, built from the environment on first use."""
    global _deps
    if _deps is None:
        settings = load_settings()
        settings.require_production_ready()
        configure_logging(settings)
        _deps = Deps(settings=settings)
    return _deps


def set_deps(deps: Deps | None) -> None:
    """Install dependencies for this process (the local server, tests)."""
    global _deps
    _deps = deps
