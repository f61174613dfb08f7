"""Chat over the gateway WebSocket (E3), with curl_cffi's WebSocket: the browser's TLS fingerprint.

One socket per turn, as the browser uses it for a temporary conversation:

    connect wss://…/ws/mgw/?uid=<user id>    (cookie: sso, sso-rw, Cloudflare's, x-userid)
    -> session.create        <- session.created + conversation.attached
    -> conversation.item.create + response.create
    <- response.chunk … response.done          (a JSON ping every 25 s while it lasts)

The user id comes from the identity call (E22) once per account: it never changes for a token,
so it is kept in the store's records beside the account (when there are records) and cached by
every process that read it. A refused handshake is classified like a REST
answer of the same status; an `error` event before the turn like an in-band error; a socket that
breaks or goes silent is a transient or timeout failure. The token is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from curl_cffi import CurlError
from curl_cffi.requests import AsyncSession
from curl_cffi.requests.websockets import AsyncWebSocket, WebSocketClosed, WebSocketTimeout

from core.ports import RecordStore
from core.protocol.classify import Kind, UpstreamFailure, classify_http, transport_failure
from core.protocol.gateway_frames import (
    gateway_url,
    handshake_failure,
    handshake_step,
    item_create,
    ping,
    response_create,
    session_create,
)
from core.settings import Settings
from infra.upstream.client import ERROR_BODY_BYTES
from infra.upstream.headers import cookie, latin1

IDENTITY_PATH = "/api/auth/session"
HEARTBEAT_SECONDS = 25.0
HANDSHAKE_SECONDS = 20.0
MAX_MESSAGE = 16 * 1024 * 1024
_REFUSED = re.compile(r"upgrade: (\d{3})", re.I)
_USER_ID_KEYS = (("session", "userId"), ("user", "id"), ("user", "userId"), ("user", "sub"))


def user_id_of(answer: Any) -> str:
    """The user id of an E22 answer: the first non-empty of the places it may stand."""
    if not isinstance(answer, dict):
        return ""
    for outer, inner in _USER_ID_KEYS:
        part = answer.get(outer)
        if isinstance(part, dict) and isinstance(part.get(inner), str) and part[inner]:
            return str(part[inner])
    for key in ("id", "userId", "sub"):
        if isinstance(answer.get(key), str) and answer[key]:
            return str(answer[key])
    return ""


class GatewayStream:
    """One turn's server messages as NDJSON bytes for `GatewayDecoder`; `aclose()` ends the socket."""

    wire = "ws"

    def __init__(self, ws: AsyncWebSocket, first: list[bytes], settings: Settings) -> None:
        self._ws = ws
        self._first = first
        self._read_timeout = settings.read_timeout
        self._deadline = time.monotonic() + settings.total_timeout
        self._closed = False
        self._beat: asyncio.TimerHandle | None = None
        self._beat_task: asyncio.Task[None] | None = None
        self._schedule_beat()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[bytes]:
        if self._first:
            first, self._first = self._first, []
            yield b"".join(first)
        while not self._closed:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise transport_failure("the gateway turn exceeded the total timeout", timeout=True)
            try:
                data, _flags = await self._ws.recv(timeout=min(self._read_timeout, left))
            except WebSocketTimeout:
                raise transport_failure("the gateway socket went silent", timeout=True) from None
            except WebSocketClosed:
                return  # the decoder's end rules decide whether the turn was complete
            except CurlError as exc:
                raise transport_failure(f"the gateway socket broke off: {type(exc).__name__}") from None
            yield _line(data)

    def _schedule_beat(self) -> None:
        self._beat = asyncio.get_running_loop().call_later(HEARTBEAT_SECONDS, self._send_beat)

    def _send_beat(self) -> None:
        if self._closed:
            return
        self._beat_task = asyncio.ensure_future(self._ping())
        self._schedule_beat()

    async def _ping(self) -> None:
        with contextlib.suppress(Exception):
            await self._ws.send_str(orjson.dumps(ping(int(time.time() * 1000))).decode())

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._beat is not None:
            self._beat.cancel()
        if self._beat_task is not None:
            self._beat_task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(), 2)
        with contextlib.suppress(Exception):
            self._ws.terminate()


def _line(data: bytes) -> bytes:
    # A newline in a JSON text is whitespace between tokens (inside strings it is escaped).
    return (data.replace(b"\n", b" ") if b"\n" in data else data) + b"\n"


class GatewayChat:
    """The chat half of the Upstream port over E3.

    Args:
        settings: upstream URL, impersonation target, user agent, Cloudflare cookies, proxy, timeouts.
        session: the warm `AsyncSession` of the REST client (`CurlUpstream.session`), shared so
            identity calls and sockets reuse its connections and impersonation.
        access: the REST client (`CurlUpstream`), whose egress pool and clearances the identity
            call and the socket use too (its `identity`, `recover`); None: the settings' UA,
            cookies and proxy as they are.
    """

    def __init__(
        self, settings: Settings, session: Any, *, records: RecordStore | None = None, access: Any = None
    ) -> None:
        self.settings = settings
        self._session = session  # a callable returning the loop's AsyncSession
        self.records = records
        self.access = access
        self._user_ids: dict[str, str] = {}

    async def _face(self, token: str) -> tuple[Any, str, str, dict[str, Any]]:
        """(identity or None, user agent, cookie, per-request egress options)."""
        s = self.settings
        if self.access is None:
            return None, s.user_agent, cookie(token, s.cf_cookies), {}
        ident = await self.access.identity(token)
        options = {"proxy": ident.egress.proxy or "", "impersonate": ident.target}
        return ident, ident.user_agent, f"sso={token}; sso-rw={token}{ident.cf}", options

    async def user_id(self, token: str) -> str:
        """The account's user UUID: from this process's cache, the records, or the identity call."""
        key = hashlib.sha256(token.encode()).hexdigest()[:32]
        known = self._user_ids.get(key)
        if known:
            return known
        if self.records is not None:
            value, _ = await self.records.read(f"account-user-id:{key}", now=time.time())
            if value is not None and isinstance(value.get("user_id"), str):
                self._user_ids[key] = value["user_id"]
                return value["user_id"]
        found = await self._identity(token)
        self._user_ids[key] = found
        if self.records is not None:
            await self.records.write(f"account-user-id:{key}", {"user_id": found}, version=0, now=time.time())
        return found

    async def _identity(self, token: str) -> str:
        """E22: who the token belongs to; a dead or blocked session fails like the REST call would."""
        s = self.settings
        tried: set[str] = set()
        while True:
            ident, user_agent, cookies, options = await self._face(token)
            headers = {
                "accept": "*/*",
                "user-agent": latin1(user_agent),
                "referer": s.upstream_url + "/",
                "cookie": latin1(cookies),
            }
            session: AsyncSession[Any] = self._session()
            try:
                response = await session.request(
                    "GET",
                    s.upstream_url + IDENTITY_PATH,
                    headers=headers,
                    timeout=s.connect_timeout + s.read_timeout,
                    http_version="v1" if s.upstream_url.startswith("http://") else None,  # type: ignore[arg-type]
                    default_headers=False,
                    **options,
                )
            except CurlError as exc:
                raise transport_failure(f"identity call failed: {type(exc).__name__}") from None
            if response.status_code == 200:
                break
            failure = classify_http(response.status_code, response.content[:ERROR_BODY_BYTES])
            if ident is None or not await self.access.recover(failure, ident, "", tried):
                raise failure
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            answer = None
        status = answer.get("status") if isinstance(answer, dict) else None
        if status == "unauthenticated":
            raise UpstreamFailure(Kind.EXPIRED, "identity call: unauthenticated", status=401)
        if status == "blocked":
            raise UpstreamFailure(Kind.BLOCKED, "identity call: blocked", status=403)
        found = user_id_of(answer)
        try:
            found = str(uuid.UUID(found))
        except ValueError:
            raise UpstreamFailure(Kind.REJECTED, "identity call answered without a user UUID") from None
        return found

    async def chat(self, token: str, body: dict[str, Any]) -> GatewayStream:
        s = self.settings
        uid = await self.user_id(token)
        tried: set[str] = set()
        while True:
            ident, user_agent, cookies, options = await self._face(token)
            headers = {
                "Origin": s.upstream_url,
                "User-Agent": latin1(user_agent),
                "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8",
                "Cache-Control": "no-cache",
                "Pragma": "no-cache",
                "Cookie": latin1(f"{cookies}; x-userid={uid}"),
            }
            session: AsyncSession[Any] = self._session()
            try:
                ws = await session.ws_connect(
                    gateway_url(s.upstream_url, uid),
                    headers=headers,
                    timeout=min(HANDSHAKE_SECONDS, s.connect_timeout + s.read_timeout),
                    default_headers=False,
                    max_message_size=MAX_MESSAGE,
                    **options,
                )
                break
            except CurlError as exc:
                failure = _refused(exc)
                # A challenged handshake: one clearance refresh and one retry, as on REST.
                if ident is None or not await self.access.recover(failure, ident, "", tried):
                    raise failure from None
        try:
            first = await self._open_turn(ws, body)
        except BaseException:
            with contextlib.suppress(Exception):
                ws.terminate()
            raise
        return GatewayStream(ws, first, s)

    async def _open_turn(self, ws: AsyncWebSocket, body: dict[str, Any]) -> list[bytes]:
        """session.create, wait for created + attached, then send the turn. Returns anything the
        server sent beyond the handshake meanwhile (for the decoder)."""
        event_id = f"evt_init_{uuid.uuid4()}"
        await ws.send_str(orjson.dumps(session_create(body, event_id)).decode())
        session_id = ""
        attached = ""
        extra: list[bytes] = []
        deadline = time.monotonic() + min(HANDSHAKE_SECONDS, self.settings.read_timeout)
        while not (session_id and attached):
            left = deadline - time.monotonic()
            if left <= 0:
                raise transport_failure("the gateway did not attach a conversation", timeout=True)
            try:
                data, _flags = await ws.recv(timeout=left)
            except WebSocketTimeout:
                raise transport_failure("the gateway did not attach a conversation", timeout=True) from None
            except CurlError as exc:
                raise transport_failure(f"the gateway socket broke off: {type(exc).__name__}") from None
            try:
                message = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            step, value = handshake_step(message, event_id) if isinstance(message, dict) else ("other", "")
            if step == "created":
                session_id = value
            elif step == "attached":
                attached = value
            elif step == "error":
                raise handshake_failure(value)
            else:
                extra.append(_line(data))
        if attached != session_id:
            raise transport_failure("the gateway attached another conversation than it created")
        millis = int(time.time() * 1000)
        await ws.send_str(orjson.dumps(item_create(session_id, body, str(uuid.uuid4()), millis)).decode())
        await ws.send_str(orjson.dumps(response_create(session_id, millis)).decode())
        return extra


def _refused(exc: CurlError) -> UpstreamFailure:
    """A failed handshake: curl names the status it refused (it keeps no body); classified like
    a REST answer of that status. Without one it is a transport failure."""
    match = _REFUSED.search(str(exc))
    if match:
        return classify_http(int(match.group(1)), b"gateway handshake refused")
    return transport_failure(f"gateway handshake failed: {type(exc).__name__}")
