"""The Upstream port over curl_cffi: Chrome impersonation, the §2.3 headers, warm connections.

The chat call, the hot path, goes through `transport.CurlTransport`: pooled curl handles
configured once, per request only the URL, body and header lines. The rare calls (upload,
download, and via `session()` the Imagine uploads) use one `AsyncSession` per event loop: they
are not hot. Both are created on first use and reused by every request of a warm process
(serverless invocations included): TLS and connections stay warm. curl_cffi errors never leave
this module: non-200 answers are classified (`core.protocol.classify`), transport failures become
transient or timeout failures. Closing a stream early aborts the transfer at once, so a client
that goes away stops the upstream read.

Over plain `http://` (the simulator) HTTP/1.1 is forced: Chrome impersonation would otherwise
offer an `Upgrade: h2c` that some loopback servers answer by losing the body (platforms §10).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import orjson
from curl_cffi import CurlError
from curl_cffi.requests import AsyncSession

from core.protocol.classify import UpstreamFailure, classify_http, transport_failure
from core.protocol.media import ASSETS_PATH, ASSETS_QUERY
from core.protocol.payload import CHAT_PATH, UPLOAD_PATH, upload_body, upload_reference
from core.settings import Settings
from infra.upstream.headers import asset_headers, cf_cookie_part, latin1, rest_headers
from infra.upstream.statsig import statsig_id
from infra.upstream.transport import CurlTransport, StreamedResponse, translate_curl_error

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


class CurlUpstream:
    """Grok's web app over curl_cffi.

    Args:
        settings: upstream/assets URLs, proxy, impersonation target, user agent, Cloudflare
            cookies and the connect/read/total timeouts.
        max_clients: concurrent transfers of the shared session.
    """

    def __init__(self, settings: Settings, *, max_clients: int = 256) -> None:
        self.settings = settings
        self.max_clients = max_clients
        self._session: AsyncSession[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        plain_http = settings.upstream_url.startswith("http://")
        self._http_version = "v1" if plain_http else None
        self._transport = CurlTransport(settings, plain_http=plain_http, max_idle=max_clients)
        self._chat_url = settings.upstream_url + CHAT_PATH
        self._static: dict[str, str] | None = None
        self._static_lines: list[bytes] = []
        self._cf = ""

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

    def _static_headers(self) -> dict[str, str]:
        # The browser part never changes: built once; per call only the cookie and the two ids.
        if self._static is None:
            static = rest_headers(token="", user_agent=self.settings.user_agent, cf_cookies=None)
            for name in ("cookie", "x-statsig-id", "x-xai-request-id"):
                static.pop(name, None)
            self._static = static
            # The same lines AsyncSession would send: `name;` sends an empty value, and a bare
            # `Expect:` keeps curl from waiting for a 100-continue on a large body.
            lines = [(f"{k}: {v}" if v else f"{k};").encode() for k, v in static.items()]
            self._static_lines = [*lines, b"Expect:"]
            cf = cf_cookie_part(self.settings.cf_cookies)
            self._cf = f"; {cf}" if cf else ""
        return self._static

    def _headers(self, token: str) -> dict[str, str]:
        headers = dict(self._static_headers())
        headers["cookie"] = latin1(f"sso={token}; sso-rw={token}{self._cf}")
        headers["x-statsig-id"] = statsig_id()
        headers["x-xai-request-id"] = str(uuid.uuid4())
        return headers

    def _header_lines(self, token: str) -> list[bytes]:
        """`_headers` as curl header lines, for the chat transport."""
        self._static_headers()
        return [
            *self._static_lines,
            f"cookie: {latin1(f'sso={token}; sso-rw={token}{self._cf}')}".encode(),
            f"x-statsig-id: {statsig_id()}".encode(),
            f"x-xai-request-id: {uuid.uuid4()}".encode(),
        ]

    async def chat(self, token: str, body: dict[str, Any]) -> StreamedResponse:
        response = await self._transport.post(self._chat_url, self._header_lines(token), orjson.dumps(body))
        if response.status != 200:
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
            raise classify_http(
                response.status, bytes(data[:ERROR_BODY_BYTES]), _retry_after(response.headers)
            )
        return response

    async def upload(self, token: str, name: str, mime: str, data: bytes) -> str:
        try:
            response = await self.session().request(
                "POST",
                self.settings.upstream_url + UPLOAD_PATH,
                data=orjson.dumps(upload_body(name, mime, data)),
                headers=self._headers(token),
                timeout=self.settings.total_timeout,
                http_version=self._http_version,  # type: ignore[arg-type]
                default_headers=False,
            )
        except CurlError as exc:
            raise translate_curl_error(exc, "upload failed") from None
        if response.status_code != 200:
            raise classify_http(
                response.status_code, response.content[:ERROR_BODY_BYTES], _retry_after(response.headers)
            )
        try:
            reference = upload_reference(orjson.loads(response.content))
        except orjson.JSONDecodeError:
            reference = None
        if reference is None:
            raise classify_http(422, b"upload answered without a file id: " + response.content[:200])
        return reference

    async def download(self, token: str, url: str, max_bytes: int) -> tuple[bytes, str]:
        if not url.startswith(self.settings.assets_url + "/"):
            raise transport_failure("refusing to send account cookies to a non-asset URL")
        headers = asset_headers(
            token=token,
            user_agent=self.settings.user_agent,
            cf_cookies=self.settings.cf_cookies,
            assets_origin=self.settings.assets_url,
        )
        try:
            response = await self.session().request(
                "GET",
                url,
                headers=headers,
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

    async def list_assets(self, token: str) -> Any:
        try:
            response = await self.session().request(
                "GET",
                f"{self.settings.upstream_url}{ASSETS_PATH}?{ASSETS_QUERY}",
                headers=self._headers(token),
                timeout=self.settings.total_timeout,
                http_version=self._http_version,  # type: ignore[arg-type]
                default_headers=False,
            )
        except CurlError as exc:
            raise translate_curl_error(exc, "asset listing failed") from None
        if response.status_code != 200:
            raise classify_http(response.status_code, response.content[:ERROR_BODY_BYTES])
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise classify_http(502, b"asset listing was not JSON") from None

    async def close(self) -> None:
        await self._transport.close()
        session, self._session = self._session, None
        if session is not None and self._loop is asyncio.get_running_loop():
            await session.close()

    aclose = close
