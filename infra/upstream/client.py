"""The Upstream port over curl_cffi: Chrome impersonation, the §2.3 headers, one warm session.

One `AsyncSession` per event loop, created on first use and reused by every request of a warm
process (serverless invocations included): TLS and connections stay warm. curl_cffi errors
never leave this module: non-200 answers are classified (`core.protocol.classify`), transport
failures become transient or timeout failures. Closing a stream early aborts the transfer at
once, so a client that goes away stops the upstream read.

Over plain `http://` (the simulator) HTTP/1.1 is forced: Chrome impersonation would otherwise
offer an `Upgrade: h2c` that some loopback servers answer by losing the body (platforms §10).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from curl_cffi import CurlError
from curl_cffi.requests import AsyncSession
from curl_cffi.requests.exceptions import Timeout

from core.protocol.classify import UpstreamFailure, classify_http, transport_failure
from core.protocol.payload import CHAT_PATH, UPLOAD_PATH, upload_body, upload_reference
from core.settings import Settings
from infra.upstream.headers import asset_headers, cf_cookie_part, latin1, rest_headers
from infra.upstream.statsig import statsig_id

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


def _translate(exc: BaseException, what: str) -> UpstreamFailure:
    # curl messages may carry the URL, never headers: safe to keep as the reason.
    text = str(exc).split(" See https://curl.se", 1)[0][:200]
    return transport_failure(f"{what}: {type(exc).__name__}: {text}", timeout=isinstance(exc, Timeout))


class CurlStream:
    """A 200 chat response being read; `aclose()` aborts the transfer (idempotent)."""

    __slots__ = ("_deadline", "_done", "_response")

    def __init__(self, response: Any, deadline: float) -> None:
        self._response = response
        self._deadline = deadline
        self._done = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        queue = self._response.queue
        from curl_cffi.requests.models import STREAM_END

        deadline = self._deadline
        try:
            while True:
                chunk = await queue.get()
                if chunk is STREAM_END:
                    self._done = True
                    return
                if isinstance(chunk, BaseException):
                    self._done = True
                    raise _translate(chunk, "upstream stream broke off")
                if time.monotonic() > deadline:
                    raise transport_failure("upstream stream exceeded the total timeout", timeout=True)
                yield chunk
        finally:
            if not self._done:
                await self.aclose()

    async def aclose(self) -> None:
        if self._done:
            return
        self._done = True
        task = self._response.astream_task
        if task is not None and not task.done():
            if self._response.quit_now is not None:
                self._response.quit_now.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, CurlError):
                await task


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
        self._http_version = "v1" if settings.upstream_url.startswith("http://") else None
        self._static: dict[str, str] | None = None
        self._cf = ""

    def session(self) -> AsyncSession[Any]:
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

    def _headers(self, token: str) -> dict[str, str]:
        # The browser part never changes: built once; per call only the cookie and the two ids.
        if self._static is None:
            static = rest_headers(token="", user_agent=self.settings.user_agent, cf_cookies=None)
            for name in ("cookie", "x-statsig-id", "x-xai-request-id"):
                static.pop(name, None)
            self._static = static
            cf = cf_cookie_part(self.settings.cf_cookies)
            self._cf = f"; {cf}" if cf else ""
        headers = dict(self._static)
        headers["cookie"] = latin1(f"sso={token}; sso-rw={token}{self._cf}")
        headers["x-statsig-id"] = statsig_id()
        headers["x-xai-request-id"] = str(uuid.uuid4())
        return headers

    @property
    def _timeout(self) -> tuple[float, float]:
        return (self.settings.connect_timeout, self.settings.read_timeout)

    async def chat(self, token: str, body: dict[str, Any]) -> CurlStream:
        deadline = time.monotonic() + self.settings.total_timeout
        try:
            response = await self.session().request(
                "POST",
                self.settings.upstream_url + CHAT_PATH,
                data=orjson.dumps(body),
                headers=self._headers(token),
                stream=True,
                timeout=self._timeout,
                http_version=self._http_version,  # type: ignore[arg-type]
                default_headers=False,
            )
        except CurlError as exc:
            raise _translate(exc, "upstream chat request failed") from None
        stream = CurlStream(response, deadline)
        if response.status_code != 200:
            data = bytearray()
            try:
                async for chunk in stream:
                    data += chunk
                    if len(data) >= ERROR_BODY_BYTES:
                        break
            except UpstreamFailure:
                pass
            finally:
                await stream.aclose()
            raise classify_http(
                response.status_code, bytes(data[:ERROR_BODY_BYTES]), _retry_after(response.headers)
            )
        return stream

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
            raise _translate(exc, "upload failed") from None
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
            raise _translate(exc, "asset download failed") from None
        if response.status_code != 200:
            raise classify_http(response.status_code, response.content[:ERROR_BODY_BYTES])
        if len(response.content) > max_bytes:
            raise transport_failure(f"asset larger than {max_bytes} bytes")
        return response.content, response.headers.get("content-type", "").split(";")[0].strip()

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and self._loop is asyncio.get_running_loop():
            await session.close()

    aclose = close
