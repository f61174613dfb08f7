"""The composition root: Settings -> adapters -> services, built once per process.

This is the only module that knows which adapter backs which port. What it caches per
process is safe to lose (settings, an HTTP session, a store client): any instance may serve
any request, because shared state lives in the store.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.ports import AccountStore, FetchedFile, RecordStore, Upstream, UrlFetcher
from core.settings import Settings, parse_dotenv
from core.transcode.sealed import Sealer

if TYPE_CHECKING:
    from core.services.stored_responses import StoredResponses

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
    """Everything a route needs, built lazily so a deployable pays only for what it uses."""

    settings: Settings
    clock: Callable[[], float] = time.time
    _store: AccountStore | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    # The settings as deployed; `settings` is these with the console's overrides (read from the
    # store at most every OVERRIDES_TTL seconds: a small cached read, safe to lose).
    base_settings: Settings | None = None
    _overrides_next: float = 0.0
    _overrides_version: int = 0

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
        for value in self.extras.values():
            if getattr(value, "settings", None) is old:
                value.settings = effective

    @property
    def store(self) -> AccountStore:
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store

    @property
    def records(self) -> RecordStore:
        """The console's records (batches, overrides, login counters), beside the account store."""

        def build(deps: Deps) -> RecordStore:
            from infra.state.factory import records_for

            return records_for(deps.store)

        records: RecordStore = self.lazy("records", build)
        return records

    @property
    def upstream(self) -> Upstream:
        """Grok's web app over curl_cffi: one warm session per process (per event loop). With
        `GROKGATE_CHAT_TRANSPORT=ws|auto` the chat call may take the gateway WebSocket instead."""

        def build(deps: Deps) -> Upstream:
            from infra.state.factory import records_for
            from infra.upstream.client import CurlUpstream

            try:
                records = records_for(deps.store)
            except TypeError:  # a store without records (a test double): shared state stays per process
                records = None
            # The records also keep the upstream's shared state: statsig inputs, clearances, egress health.
            rest = CurlUpstream(deps.settings, records=records)
            if deps.settings.chat_transport == "rest":
                return rest
            from infra.upstream.chat_router import ChatTransports

            return ChatTransports(deps.settings, rest, records=records)

        upstream: Upstream = self.lazy("upstream", build)
        return upstream

    @property
    def fetcher(self) -> UrlFetcher:
        """Client-supplied URL fetches: no account cookie, behind the SSRF guard. Built (and httpx
        imported) on the first client URL, so a process that never sees one never pays for it."""

        def build(deps: Deps) -> UrlFetcher:
            return _DeferredFetcher(deps.settings)

        fetcher: UrlFetcher = self.lazy("fetcher", build)
        return fetcher

    @property
    def sealer(self) -> Sealer:
        """Signs and checks the `encrypted_content` of Responses reasoning items."""

        def build(deps: Deps) -> Sealer:
            return Sealer(reasoning_key(deps.settings))

        sealer: Sealer = self.lazy("sealer", build)
        return sealer

    @property
    def responses(self) -> StoredResponses:
        """Stored Responses API responses, beside the account store (built on first use, so a
        process that stores none never imports the adapter)."""

        def build(deps: Deps) -> StoredResponses:
            from core.services.stored_responses import StoredResponses
            from infra.state.factory import responses_for

            return StoredResponses(
                responses_for(deps.store), ttl=deps.settings.responses_ttl, clock=deps.clock
            )

        responses: StoredResponses = self.lazy("responses", build)
        return responses

    def lazy(self, name: str, build: Callable[[Deps], Any]) -> Any:
        """A per-process singleton (an HTTP session, a media store), built on first use."""
        if name not in self.extras:
            self.extras[name] = build(self)
        return self.extras[name]

    async def aclose(self) -> None:
        for value in list(
            self.extras.values()
        ):  # what holds unwritten state writes it while the store is open
            flush = getattr(value, "flush", None)
            if flush is not None:
                try:
                    await flush()
                except Exception as exc:
                    log.warning("could not flush %s at shutdown: %s", type(value).__name__, exc)
        if self._store is not None:
            await self._store.close()
            self._store = None
        for value in self.extras.values():
            closer = getattr(value, "aclose", None)
            if closer is not None:
                await closer()
        self.extras.clear()


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
