"""The Upstream port over curl_cffi: Chrome impersonation, the headers of docs/protocol.md, warm connections.

The chat call, the hot path, goes through `transport.CurlTransport`: pooled curl handles
configured once, per request only the URL, body and header lines. The rare calls (upload,
download, and via `session()` the Imagine uploads) use one `AsyncSession` per event loop: they
are not hot. Both are created on first use and reused by every request of a warm process
(serverless invocations included): TLS and connections stay warm. curl_cffi errors never leave
this module: non-200 answers are classified (`core.protocol.classify`), transport failures become
transient or timeout failures. Closing a stream early aborts the transfer at once, so a client
that goes away stops the upstream read.

Every call leaves through the account's egress (`egress.py`) and shows that egress's identity:
the clearance's User-Agent and cookies when it has one (`infra/clearance.py`), else the
configured ones, with a matching impersonation target. A Cloudflare challenge answer triggers
one shared solve and one retry; a statsig refusal (code 7, "page is out of date") one fresh
scrape and one retry. So a build rotation or an expired clearance costs one retried call.

Over plain `http://` (the simulator) HTTP/1.1 is forced: Chrome impersonation would otherwise
offer an `Upgrade: h2c` that some loopback servers answer by losing the body (docs/simulator.md).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
from curl_cffi import CurlError
from curl_cffi.requests import AsyncSession

from core.protocol.classify import Kind, UpstreamFailure, classify_http, transport_failure
from core.protocol.media import ASSETS_PATH, ASSETS_QUERY, MEDIA_POST_PATH
from core.protocol.payload import CHAT_PATH, UPLOAD_PATH, upload_body, upload_reference
from core.settings import Settings
from infra.clearance import Clearance, ClearanceManager, ClearanceSolveFailed, FlareSolverr
from infra.upstream.egress import Egress, EgressPool, impersonation_for
from infra.upstream.headers import asset_headers, cf_cookie_part, latin1, rest_headers
from infra.upstream.statsig import StatsigProvider, StatsigUnavailable
from infra.upstream.transport import CurlTransport, StreamedResponse, translate_curl_error

if TYPE_CHECKING:  # the port is only named in annotations: not imported on the hot path
    from core.ports import RecordStore

log = logging.getLogger("grokgate.upstream")
ERROR_BODY_BYTES = 4096


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Identity:
    """How one call presents itself: the egress, its clearance, UA, cookies and TLS target."""

    egress: Egress
    clearance: Clearance | None
    user_agent: str
    cf: str  # "; cf_clearance=...; __cf_bm=..." or ""
    target: str
    lines: list[bytes]  # the static header lines for this UA


def _supported_targets() -> list[str]:
    from curl_cffi.requests.impersonate import BrowserType

    return [b.value for b in BrowserType]


class CurlUpstream:
    """Grok's web app over curl_cffi.

    Args:
        settings: upstream/assets URLs, egress pool, impersonation target, user agent, manual
            Cloudflare cookies, FlareSolverr, statsig mode and the timeouts.
        records: the shared record store (statsig inputs, clearances, egress health); None keeps
            them in this process.
        max_clients: concurrent transfers of the shared session.
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        records: RecordStore | None = None,
        max_clients: int = 256,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if records is None:
            from infra.state.memory_records import MemoryRecords

            records = MemoryRecords()
        self.settings = settings
        self.records = records
        self.max_clients = max_clients
        self._session: AsyncSession[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._plain_http = settings.upstream_url.startswith("http://")
        self._http_version = "v1" if self._plain_http else None
        self._transports: dict[str, CurlTransport] = {}
        self._chat_url = settings.upstream_url + CHAT_PATH
        self._lines: dict[str, list[bytes]] = {}
        self._static: dict[str, dict[str, str]] = {}
        self._targets = _supported_targets()
        self.pool = EgressPool(
            settings.egress_proxies(), records, cooldown=settings.proxy_cooldown, clock=clock
        )
        solver = (
            FlareSolverr(settings.flaresolverr_url, timeout=settings.flaresolverr_timeout)
            if settings.flaresolverr_url
            else None
        )
        self.clearance = ClearanceManager(
            records, solver, target=settings.upstream_url + "/", ttl=settings.clearance_ttl, clock=clock
        )
        self.statsig = StatsigProvider(
            settings, records, self._get_page, post_json=self._post_json, clock=clock
        )
        self._transport = self._transport_for(settings.impersonate)

    # -- identity ----------------------------------------------------------------------------

    def _transport_for(self, target: str) -> CurlTransport:
        transport = self._transports.get(target)
        if transport is None:
            transport = CurlTransport(
                self.settings, plain_http=self._plain_http, max_idle=self.max_clients, impersonate=target
            )
            self._transports[target] = transport
        return transport

    def _static_headers(self, user_agent: str) -> dict[str, str]:
        # The browser part changes only with the UA: built once per UA.
        static = self._static.get(user_agent)
        if static is None:
            static = rest_headers(token="", user_agent=user_agent, cf_cookies=None, request_id=False)
            static.pop("cookie", None)
            self._static[user_agent] = static
            # The same lines AsyncSession would send: `name;` sends an empty value, and a bare
            # `Expect:` keeps curl from waiting for a 100-continue on a large body.
            lines = [(f"{k}: {v}" if v else f"{k};").encode() for k, v in static.items()]
            self._lines[user_agent] = [*lines, b"Expect:"]
        return static

    async def identity(self, token: str) -> Identity:
        """The egress and face of the account behind `token` (its clearance loaded if needed)."""
        await self.pool.sync()
        egress = self.pool.for_token(token)
        cached = self.clearance.cached(egress.key)
        clearance = await self.clearance.current(egress.key) if cached is False else cached
        return self._identity(egress, clearance)  # type: ignore[arg-type]

    def _identity(self, egress: Egress, clearance: Clearance | None) -> Identity:
        if clearance is not None:
            user_agent, cf = clearance.user_agent, cf_cookie_part(clearance.cookies)
            target = impersonation_for(user_agent, self.settings.impersonate, self._targets)
        else:
            user_agent, cf = self.settings.user_agent, cf_cookie_part(self.settings.cf_cookies)
            target = self.settings.impersonate
        self._static_headers(user_agent)
        return Identity(
            egress, clearance, user_agent, f"; {cf}" if cf else "", target, self._lines[user_agent]
        )

    def _cookie(self, token: str, ident: Identity) -> str:
        return latin1(f"sso={token}; sso-rw={token}{ident.cf}") if token else latin1(ident.cf[2:])

    def _headers(self, token: str, ident: Identity, statsig: str | None, **overrides: str) -> dict[str, str]:
        headers = dict(self._static[ident.user_agent])
        cookie = self._cookie(token, ident)
        if cookie:
            headers["cookie"] = cookie
        if statsig is not None:
            headers["x-statsig-id"] = statsig
        headers["x-xai-request-id"] = str(uuid.uuid4())
        headers.update(overrides)
        return headers

    async def _statsig(self, method: str, path: str) -> tuple[str, str]:
        try:
            return await self.statsig.value(method, path), self.statsig.build
        except StatsigUnavailable as exc:
            raise transport_failure(f"x-statsig-id unavailable: {exc}") from None

    async def recover(self, failure: UpstreamFailure, ident: Identity, build: str, tried: set[str]) -> bool:
        """After a refusal: refresh what it names (once per kind per call); True to retry."""
        if failure.kind is Kind.ANTI_BOT and "statsig" not in tried and self.settings.statsig != "manual":
            tried.add("statsig")
            self.statsig.invalidate(build)
            return True
        if failure.kind is Kind.CHALLENGE and "clearance" not in tried and self.clearance.enabled:
            tried.add("clearance")
            try:
                await self.clearance.refresh(ident.egress.key, ident.egress.proxy, ident.clearance)
            except ClearanceSolveFailed as exc:
                raise UpstreamFailure(
                    Kind.CHALLENGE,
                    f"{failure.reason}; clearance refresh failed: {exc.message}",
                    status=failure.status,
                ) from None
            return True
        return False

    async def note_failure(self, failure: UpstreamFailure) -> None:
        """An in-band refusal seen by the chat service after the stream opened (HTTP 200 +
        code 7): the next call builds its value from a fresh scrape."""
        if failure.kind is Kind.ANTI_BOT and self.settings.statsig != "manual":
            self.statsig.invalidate(self.statsig.build)

    # -- the hot path --------------------------------------------------------------------------

    async def chat(self, token: str, body: dict[str, Any]) -> StreamedResponse:
        payload = orjson.dumps(body)
        tried: set[str] = set()
        while True:
            ident = await self.identity(token)
            statsig, build = await self._statsig("POST", CHAT_PATH)
            lines = [
                *ident.lines,
                f"cookie: {self._cookie(token, ident)}".encode(),
                f"x-statsig-id: {statsig}".encode(),
                f"x-xai-request-id: {uuid.uuid4()}".encode(),
            ]
            try:
                response = await self._transport_for(ident.target).post(
                    self._chat_url, lines, payload, proxy=ident.egress.proxy
                )
            except UpstreamFailure as failure:
                await self.pool.mark_failed(ident.egress, failure.reason)
                # Nothing reached the upstream through a proxy that refused the connection: the
                # account moves to its next egress and the call is tried once there.
                if ident.egress.proxy and "egress" not in tried and _NOT_CONNECTED.search(failure.reason):
                    tried.add("egress")
                    continue
                raise
            if response.status == 200:
                return response
            data = bytearray()
            try:
                async for chunk in response:
                    data += chunk
                    if len(data) >= ERROR_BODY_BYTES:
                        break
            except UpstreamFailure:
                pass
            finally:
                await response.aclose()
            failure = classify_answer(response.status, bytes(data[:ERROR_BODY_BYTES]), response.headers)
            if not await self.recover(failure, ident, build, tried):
                raise failure

    # -- the rare calls ------------------------------------------------------------------------

    def session(self) -> AsyncSession[Any]:
        """The `AsyncSession` of the running loop, for the calls that are not hot."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop:
            # A new loop (a new Lambda event loop, a test) cannot use the old session's handles.
            self._session = AsyncSession(
                max_clients=self.max_clients,
                impersonate=self.settings.impersonate,  # type: ignore[arg-type]
                proxy=self.settings.proxy_url,
                trust_env=False,
                allow_redirects=False,
            )
            self._loop = loop
        return self._session

    async def send(
        self,
        token: str,
        method: str,
        url: str,
        *,
        data: bytes | None = None,
        statsig: bool = True,
        headers: Callable[[dict[str, str]], dict[str, str]] | None = None,
        what: str = "upstream call",
        time_limit: float | None = None,
        **extra: Any,
    ) -> Any:
        """One rare call (not streamed) through the account's egress and identity, with the same
        recoveries as chat: a challenge -> one solve and retry; a statsig refusal -> one re-scrape
        and retry. Returns the curl_cffi response of any status; transport failures raise."""
        from urllib.parse import urlsplit

        path = urlsplit(url).path
        tried: set[str] = set()
        while True:
            ident = await self.identity(token)
            value, build = await self._statsig(method, path) if statsig else (None, "")
            sent = self._headers(token, ident, value)
            if headers is not None:
                sent = headers(sent)
            try:
                response = await self.session().request(
                    method,  # type: ignore[arg-type]
                    url,
                    data=data,
                    headers=sent,
                    proxy=ident.egress.proxy or "",
                    impersonate=ident.target,  # type: ignore[arg-type]
                    timeout=time_limit or self.settings.total_timeout,
                    http_version="v1" if url.startswith("http://") else None,  # type: ignore[arg-type]
                    default_headers=False,
                    **extra,
                )
            except CurlError as exc:
                await self.pool.mark_failed(ident.egress, str(exc)[:200])
                failure = translate_curl_error(exc, f"{what} failed")
                if ident.egress.proxy and "egress" not in tried and _NOT_CONNECTED.search(failure.reason):
                    tried.add("egress")  # as in chat: nothing was sent, try the next egress once
                    continue
                raise failure from None
            if response.status_code != 403:
                return response
            failure = classify_answer(
                response.status_code, response.content[:ERROR_BODY_BYTES], response.headers
            )
            if not await self.recover(failure, ident, build, tried):
                return response

    async def _get_page(self, url: str) -> tuple[int, str]:
        """An anonymous document navigation (the statsig page and chunk), through the egress of
        the scraper's pseudo-account."""

        def navigate(headers: dict[str, str]) -> dict[str, str]:
            for name in ("content-type", "origin", "x-xai-request-id", "baggage", "priority"):
                headers.pop(name, None)
            headers.update(
                {
                    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                    "sec-fetch-dest": "document",
                    "sec-fetch-mode": "navigate",
                    "sec-fetch-site": "none",
                    "upgrade-insecure-requests": "1",
                    # A rare call (a scrape an hour): no idle connection left behind for it.
                    "connection": "close",
                }
            )
            return headers

        response = await self.send(
            "",
            "GET",
            url,
            statsig=False,
            headers=navigate,
            what="statsig page",
            time_limit=min(30.0, self.settings.total_timeout),
        )
        return response.status_code, response.text

    async def _post_json(self, url: str, body: dict[str, Any]) -> Any:
        import httpx

        async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
            response = await client.post(url, json=body)
        response.raise_for_status()
        return response.json()

    async def upload(self, token: str, name: str, mime: str, data: bytes) -> str:
        return (await self.upload_file(token, name, mime, data))[0]

    async def upload_file(self, token: str, name: str, mime: str, data: bytes) -> tuple[str, str]:
        # E5 is not among the calls that carry x-statsig-id (docs/protocol.md#statsig).
        response = await self.send(
            token,
            "POST",
            self.settings.upstream_url + UPLOAD_PATH,
            data=orjson.dumps(upload_body(name, mime, data)),
            statsig=False,
            what="upload",
        )
        if response.status_code != 200:
            raise classify_http(
                response.status_code, response.content[:ERROR_BODY_BYTES], _retry_after(response.headers)
            )
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            answer = None
        reference = upload_reference(answer)
        if reference is None:
            raise classify_http(422, b"upload answered without a file id: " + response.content[:200])
        uri = answer.get("fileUri") if isinstance(answer, dict) else None
        meta = answer.get("fileMetadata") if isinstance(answer, dict) else None
        if not uri and isinstance(meta, dict):
            uri = meta.get("fileUri")
        return reference, str(uri or "")

    async def media_post(self, token: str, body: dict[str, Any]) -> Any:
        def imagine(headers: dict[str, str]) -> dict[str, str]:
            headers["referer"] = self.settings.upstream_url + "/imagine"
            return headers

        response = await self.send(
            token,
            "POST",
            self.settings.upstream_url + MEDIA_POST_PATH,
            data=orjson.dumps(body),
            headers=imagine,
            what="media post",
        )
        return _json_answer(response, b"media post")

    async def download(self, token: str, url: str, max_bytes: int) -> tuple[bytes, str]:
        if not url.startswith(self.settings.assets_url + "/"):
            raise transport_failure("refusing to send account cookies to a non-asset URL")
        ident = await self.identity(token)
        headers = asset_headers(
            token=token,
            user_agent=ident.user_agent,
            cf_cookies=ident.clearance.cookies if ident.clearance else self.settings.cf_cookies,
            assets_origin=self.settings.assets_url,
        )
        try:
            response = await self.session().request(
                "GET",
                url,
                headers=headers,
                proxy=ident.egress.proxy or "",
                impersonate=ident.target,  # type: ignore[arg-type]
                timeout=self.settings.total_timeout,
                http_version="v1" if url.startswith("http://") else None,
                default_headers=False,
            )
        except CurlError as exc:
            raise translate_curl_error(exc, "asset download failed") from None
        if response.status_code != 200:
            raise classify_http(response.status_code, response.content[:ERROR_BODY_BYTES])
        if len(response.content) > max_bytes:
            raise transport_failure(f"asset larger than {max_bytes} bytes")
        return response.content, response.headers.get("content-type", "").split(";")[0].strip()

    async def list_assets(self, token: str, page_token: str = "") -> Any:
        # E7 carries no x-statsig-id (docs/protocol.md#statsig).
        page = f"&pageToken={quote(page_token, safe='')}" if page_token else ""
        response = await self.send(
            token,
            "GET",
            f"{self.settings.upstream_url}{ASSETS_PATH}?{ASSETS_QUERY}{page}",
            statsig=False,
            what="asset listing",
        )
        return _json_answer(response, b"asset listing")

    async def aclose(self) -> None:
        for transport in self._transports.values():
            await transport.aclose()
        session, self._session = self._session, None
        if session is not None and self._loop is asyncio.get_running_loop():
            await session.close()


def _json_answer(response: Any, what: bytes) -> Any:
    """A rare call's JSON answer; a non-200 or a body that is not JSON is classified."""
    if response.status_code != 200:
        raise classify_http(response.status_code, response.content[:ERROR_BODY_BYTES])
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise classify_http(502, what + b" answer was not JSON") from None


_NOT_CONNECTED = re.compile(r"connect|proxy|resolve", re.I)


def classify_answer(status: int, body: bytes, headers: Any) -> UpstreamFailure:
    """`classify_http`, plus Cloudflare's own marker: `cf-mitigated: challenge` is a challenge
    whatever the body says."""
    if status == 403 and headers is not None and (headers.get("cf-mitigated") or "").lower() == "challenge":
        return UpstreamFailure(Kind.CHALLENGE, "HTTP 403: Cloudflare challenge (cf-mitigated)", status=403)
    return classify_http(status, body, _retry_after(headers))
