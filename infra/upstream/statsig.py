"""`x-statsig-id` values for upstream calls (docs/protocol.md#statsig), in three modes:

* `local` (default): signed in process (`core.protocol.statsig`) from inputs scraped off
  grok.com: the seed and curves from `/index` (falling back to `/`), the indices from the
  JavaScript chunk that carries them. The inputs are shared through the store's records (kind
  `statsig`) with their build id, and cached per process; one value per request costs a SHA-256.
* `signer`: a signer service speaking [v3]'s protocol (POST `{method, path, environment:
  {metaContent}}` -> `{"x-statsig-id": ...}`); values are cached per (method, path).
* `manual`: one fixed value from the operator.

A value that does not decode to 70 bytes is never sent. `invalidate()` is called when the
upstream answers code 7 or "page is out of date": the next value comes from a fresh scrape
(one per process for any number of refusals of the same build).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from core.protocol.classify import transport_failure
from core.protocol.statsig import StatsigError, StatsigInputs, fingerprint, sign, usable
from core.protocol.statsig_page import (
    PageError,
    build_id,
    chunk_paths,
    parse_curves,
    parse_indices,
    parse_seed,
)
from core.settings import Settings

if TYPE_CHECKING:  # the port is only named in annotations: not imported on the hot path
    from core.ports import RecordStore

log = logging.getLogger("grokgate.statsig")
RECORD = "statsig:inputs"
MAX_CHUNKS = 64

# (status, text) of an anonymous GET of a grok.com URL, through the scraping egress.
PageGetter = Callable[[str], Awaitable[tuple[int, str]]]


class StatsigUnavailable(Exception):
    """No valid value can be made (scrape failed, signer down); the message says why."""


class Scraper:
    """Reads the inputs off the upstream's page and chunk (docs/protocol.md#statsig)."""

    def __init__(self, base_url: str, get: PageGetter) -> None:
        self.base_url = base_url
        self.get = get

    async def page(self) -> str:
        status, html = await self.get(self.base_url + "/index")
        if "grok-site" not in html.replace("\u2015", "-").replace("\u2010", "-"):
            status, html = await self.get(self.base_url + "/")
        if status >= 400 and status != 404:
            raise StatsigUnavailable(f"the statsig page answered HTTP {status}")
        return html

    async def scrape(self, previous: dict[str, Any] | None) -> tuple[StatsigInputs, str]:
        """Fresh inputs and the chunk they came from; the chunk is read again only when its name changed."""
        html = await self.page()
        try:
            seed, curves = parse_seed(html), parse_curves(html)
        except PageError as exc:
            raise StatsigUnavailable(str(exc)) from None
        chunks = chunk_paths(html, MAX_CHUNKS)
        if previous and previous.get("chunk") in chunks:
            try:
                old = StatsigInputs.from_dict(previous["inputs"])
                indices, group = old.indices, old.group_index
                chunk = previous["chunk"]
            except (StatsigError, KeyError):
                indices = None  # type: ignore[assignment]
        else:
            indices = None  # type: ignore[assignment]
        if indices is None:
            found = None
            # The chunk that carries the indices is usually among the last ones listed.
            for chunk in reversed(chunks):
                status, js = await self.get(self.base_url + chunk)
                if status == 200 and (found := parse_indices(js)) is not None:
                    break
            if found is None:
                raise StatsigUnavailable("no JavaScript chunk carries the statsig indices")
            indices, group = found
        inputs = StatsigInputs(seed, curves, indices, group, build_id(chunk, curves, indices))
        return inputs, chunk


class StatsigProvider:
    """Args:
    settings: `statsig` mode, signer URL, manual value, `statsig_ttl`, upstream URL.
    records: the shared record store (local mode's inputs), or None (per process only).
    get: anonymous page fetches through the scraping egress.
    post_json: the signer call (signer mode): (url, body) -> parsed JSON.
    clock: seconds since the epoch.
    """

    def __init__(
        self,
        settings: Settings,
        records: RecordStore | None,
        get: PageGetter,
        *,
        post_json: Callable[[str, dict[str, Any]], Awaitable[Any]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.mode = settings.statsig
        self.settings = settings
        self.records = records
        self.scraper = Scraper(settings.upstream_url, get)
        self.post_json = post_json
        self.clock = clock
        self.scrapes = 0
        self._inputs: StatsigInputs | None = None
        self._hex = ""
        self._loaded_at = float("-inf")
        self._scraped_at = float("-inf")
        self._stale_build = ""
        self._previous: dict[str, Any] | None = None  # the last scrape's record (its chunk name)
        self._lock = asyncio.Lock()
        self._signed: dict[tuple[str, str], tuple[str, float]] = {}

    @property
    def build(self) -> str:
        return self._inputs.build_id if self._inputs else ""

    async def value(self, method: str, path: str) -> str:
        """A value for one request; raises `StatsigUnavailable` if none can be made."""
        if self.mode == "manual":
            return self.settings.statsig_value or ""
        now = self.clock()
        if self.mode == "signer":
            return await self._from_signer(method, path, now)
        inputs = self._inputs
        if inputs is None or now - self._loaded_at > self.settings.statsig_ttl:
            inputs = await self._load()
        return sign(method, path, inputs, self._hex, self.clock())

    def signed_now(self, method: str, path: str) -> str | None:
        """A local-mode value from the inputs already loaded (no I/O), or None if none are."""
        if self.mode != "local" or self._inputs is None:
            return None
        return sign(method, path, self._inputs, self._hex, self.clock())

    def invalidate(self, build: str) -> None:
        """The upstream refused a value made from `build`: the next one comes from a fresh scrape.
        Concurrent refusals of the same build cause one scrape (a later build is kept)."""
        self._signed.clear()
        if self._inputs is not None and self._inputs.build_id == build:
            self._stale_build = build
            self._inputs = None

    async def refresh(self) -> str:
        """Scrape now (cron): returns the build id."""
        self._signed.clear()
        return (await self._load(force=True)).build_id

    async def _load(self, *, force: bool = False) -> StatsigInputs:
        async with self._lock:
            if (
                self._inputs is not None
                and not force
                and self.clock() - self._loaded_at <= self.settings.statsig_ttl
            ):
                return self._inputs
            now = self.clock()
            record, version = (None, 0)
            if self.records is not None:
                record, version = await self.records.read(RECORD, now=now)
            previous = record or self._previous
            if record is not None and not force:
                try:
                    inputs = StatsigInputs.from_dict(record["inputs"])
                except (StatsigError, KeyError):
                    inputs = None
                # After a refusal, a stored build other than the refused one is another instance's scrape.
                if inputs is not None and (not self._stale_build or inputs.build_id != self._stale_build):
                    return self._install(inputs, now)
            self._scraped_at = now
            try:
                inputs, chunk = await self.scraper.scrape(previous)
            except (StatsigUnavailable, StatsigError):
                raise
            except Exception as exc:  # a transport failure of the page fetch
                raise StatsigUnavailable(f"statsig page fetch failed: {exc}") from None
            self.scrapes += 1
            value = {"inputs": inputs.as_dict(), "chunk": chunk, "build_id": inputs.build_id}
            self._previous = value
            if self.records is not None:
                # A lost race: another instance stored its scrape meanwhile; ours is as fresh.
                await self.records.write(
                    RECORD, value, version=version, now=now, ttl=self.settings.statsig_ttl
                )
            log.info("statsig inputs scraped (build %s)", inputs.build_id)
            return self._install(inputs, now)

    def _install(self, inputs: StatsigInputs, now: float) -> StatsigInputs:
        self._hex = fingerprint(inputs)
        self._inputs = inputs
        self._loaded_at = now
        self._stale_build = ""
        return inputs

    async def _from_signer(self, method: str, path: str, now: float) -> str:
        cached = self._signed.get((method, path))
        if cached is not None and now - cached[1] < self.settings.statsig_ttl:
            return cached[0]
        if self.post_json is None or not self.settings.statsig_signer_url:
            raise StatsigUnavailable("signer mode needs GROKGATE_STATSIG_SIGNER_URL")
        try:
            meta = base64.b64encode(parse_seed(await self.scraper.page())).decode("ascii")
        except PageError as exc:
            raise StatsigUnavailable(str(exc)) from None
        body = {"method": method, "path": path, "environment": {"metaContent": meta}}
        try:
            answer = await self.post_json(self.settings.statsig_signer_url, body)
        except Exception as exc:
            raise StatsigUnavailable(f"the statsig signer failed: {type(exc).__name__}") from None
        value = answer.get("x-statsig-id") if isinstance(answer, dict) else None
        if not isinstance(value, str) or not usable(value):
            raise StatsigUnavailable("the statsig signer answered no 70-byte value")
        self._signed[(method, path)] = (value, now)
        return value


def unavailable_failure(exc: StatsigUnavailable) -> Exception:
    """What the chat path raises when no value can be made: a transient upstream failure."""
    return transport_failure(f"x-statsig-id unavailable: {exc}")
