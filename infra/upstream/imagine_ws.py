"""The ImagineUpstream port: the Imagine WebSocket (E4, `websockets`) and Imagine uploads (E6).

E4 (docs/protocol.md#imagine): `{upstream}/ws/imagine/listen` with Origin, User-Agent and the cookie pair;
no statsig. A refused handshake is classified like a REST answer (429 rate limit, 403
challenge, 400/401 credentials); transport failures and silences longer than `read_timeout`
become transient/timeout failures. As in [v2], the socket has no browser TLS fingerprint.

E6: multipart `file` + `file_source=IMAGINE_SELF_UPLOAD_FILE_SOURCE`, Referer /imagine,
without statsig or request id, over the upstream client's warm `AsyncSession` (a rare call: the
pooled handles of `transport.py` are for the chat hot path).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from curl_cffi import CurlMime
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedOK, InvalidStatus, WebSocketException

from core.protocol.classify import classify_http, transport_failure
from core.protocol.payload import upload_reference
from core.settings import Settings
from infra.upstream.client import ERROR_BODY_BYTES, CurlUpstream
from infra.upstream.headers import latin1

IMAGINE_PATH = "/ws/imagine/listen"
UPLOAD_V2_PATH = "/http/upload-file-v2/direct"
IMAGINE_SOURCE = "IMAGINE_SELF_UPLOAD_FILE_SOURCE"
MAX_FRAME = 16 * 1024 * 1024


class ImagineSocket:
    """One open E4 socket: `send(dict)`, iterate decoded frames, `aclose()`."""

    def __init__(self, ws: ClientConnection, read_timeout: float, deadline: float) -> None:
        self._ws = ws
        self._read_timeout = read_timeout
        self._deadline = deadline

    async def send(self, message: dict[str, Any]) -> None:
        try:
            await self._ws.send(orjson.dumps(message).decode())
        except WebSocketException as exc:
            raise transport_failure(f"imagine socket send failed: {type(exc).__name__}") from None

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise transport_failure("imagine round exceeded the total timeout", timeout=True)
            try:
                raw = await asyncio.wait_for(self._ws.recv(), min(self._read_timeout, left))
            except ConnectionClosedOK:
                return
            except TimeoutError:
                raise transport_failure("imagine socket went silent", timeout=True) from None
            except (WebSocketException, OSError) as exc:
                raise transport_failure(f"imagine socket broke off: {type(exc).__name__}") from None
            try:
                frame = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(frame, dict):
                yield frame

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(), 5)


class WsImagine:
    """Args:
    settings: upstream URL, user agent, Cloudflare cookies, proxy, timeouts.
    upstream: the curl_cffi chat client whose warm session carries E6 uploads.
    """

    def __init__(self, settings: Settings, upstream: CurlUpstream) -> None:
        self.settings = settings
        self.upstream = upstream

    @property
    def url(self) -> str:
        base = self.settings.upstream_url
        return ("wss://" + base[8:] if base.startswith("https://") else "ws://" + base[7:]) + IMAGINE_PATH

    async def connect(self, token: str) -> ImagineSocket:
        """The handshake goes through the account's egress with its clearance's UA and cookies; a
        challenged handshake gets one clearance refresh and one retry, like the REST calls."""
        s = self.settings
        tried: set[str] = set()
        while True:
            ident = await self.upstream.identity(token)
            headers = {
                "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8",
                "Cache-Control": "no-cache",
                "Pragma": "no-cache",
                "Cookie": latin1(f"sso={token}; sso-rw={token}{ident.cf}"),
            }
            try:
                ws = await connect(
                    self.url,
                    origin=s.upstream_url,  # type: ignore[arg-type]
                    additional_headers=headers,
                    user_agent_header=latin1(ident.user_agent),
                    open_timeout=s.connect_timeout,
                    max_size=MAX_FRAME,
                    compression=None,
                    ping_interval=20,
                    proxy=ident.egress.proxy,
                )
            except InvalidStatus as exc:
                response = exc.response
                body = bytes(response.body or b"")[:ERROR_BODY_BYTES]
                retry_after = response.headers.get("retry-after")
                failure = classify_http(
                    response.status_code,
                    body,
                    float(retry_after) if retry_after and retry_after.isdigit() else None,
                )
                if await self.upstream.recover(failure, ident, "", tried):
                    continue
                raise failure from None
            except TimeoutError:
                raise transport_failure("imagine handshake timed out", timeout=True) from None
            except (WebSocketException, OSError) as exc:
                await self.upstream.pool.mark_failed(ident.egress, type(exc).__name__)
                raise transport_failure(f"imagine handshake failed: {type(exc).__name__}") from None
            return ImagineSocket(ws, s.read_timeout, time.monotonic() + s.total_timeout)

    async def upload(self, token: str, name: str, mime: str, data: bytes) -> str:
        s = self.settings

        def e6(headers: dict[str, str]) -> dict[str, str]:
            # E6: multipart (curl sets the type), no x-xai-request-id, no statsig (docs/protocol.md#headers).
            for name in ("content-type", "x-xai-request-id"):
                headers.pop(name, None)
            headers["referer"] = s.upstream_url + "/imagine"
            return headers

        form = CurlMime()
        form.addpart(name="file", content_type=mime, filename=name, data=data)
        form.addpart(name="file_source", data=IMAGINE_SOURCE.encode())
        try:
            response = await self.upstream.send(
                token,
                "POST",
                s.upstream_url + UPLOAD_V2_PATH,
                statsig=False,
                headers=e6,
                what="imagine upload",
                multipart=form,
            )
        finally:
            form.close()
        if response.status_code != 200:
            raise classify_http(response.status_code, response.content[:ERROR_BODY_BYTES])
        try:
            reference = upload_reference(orjson.loads(response.content))
        except orjson.JSONDecodeError:
            reference = None
        if reference is None:
            raise classify_http(422, b"imagine upload answered without a file id")
        return reference

    async def aclose(self) -> None:
        return None
