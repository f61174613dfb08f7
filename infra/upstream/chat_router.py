"""The Upstream port with the chat call on either transport: REST, the gateway WebSocket, or `auto`.

`auto` chats over REST and moves an account to the WebSocket when REST refuses it the way
grok.com refuses a retired or distrusted client: HTTP 403 anti-bot (code 7), 404 or 410. The
same call is then made once over the socket (the client sees one retried call, the lease is
the same), and the account stays on the socket for `ws_fallback_seconds`, after which REST is
tried again. The move is kept in the store's records (`RecordStore`) when there is one, so every
instance sees it; each instance caches what it read for `RECHECK_SECONDS`. Without records the
move is this process's alone (losing it costs one REST attempt).

Only plain chat bodies (`modeId`) take the socket; media generations (`modelName`,
`mediaGenInput`) have no WebSocket form and always use REST. Uploads and downloads are REST.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from core.ports import RecordStore
from core.protocol.classify import Kind, UpstreamFailure
from core.settings import Settings
from infra.upstream.client import CurlUpstream
from infra.upstream.gateway_ws import GatewayChat

log = logging.getLogger("grokgate.upstream")
_RETIRED = (404, 410)
RECHECK_SECONDS = 30.0


def account_key(token: str) -> str:
    """The records key part of an account: a digest of its token (the token itself never is one)."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def moves_to_socket(failure: UpstreamFailure) -> bool:
    """A REST refusal that the WebSocket may not share: anti-bot, or the endpoint gone."""
    return failure.kind is Kind.ANTI_BOT or (failure.status in _RETIRED)


def _socket_body(body: dict[str, Any]) -> bool:
    return "modeId" in body and "mediaGenInput" not in body


class ChatTransports:
    """Args:
    settings: `chat_transport` and `ws_fallback_seconds`, and what both transports need.
    rest: the REST client (also serves uploads, downloads and media generations).
    gateway: the WebSocket chat; built from `rest`'s session when None.
    records: where moves to the socket (and the accounts' user ids) are shared; None: this process.
    clock: seconds since the epoch.
    """

    def __init__(
        self,
        settings: Settings,
        rest: CurlUpstream,
        gateway: GatewayChat | None = None,
        *,
        records: RecordStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.rest = rest
        self.gateway = gateway or GatewayChat(settings, rest.session, records=records, access=rest)
        self.records = records
        self.clock = clock
        self._on_socket: dict[str, tuple[float, float]] = {}  # account key -> (socket until, read at)

    async def chat(self, token: str, body: dict[str, Any]) -> Any:
        mode = self.settings.chat_transport
        if mode == "rest" or not _socket_body(body):
            return await self.rest.chat(token, body)
        if mode == "ws":
            return await self.gateway.chat(token, body)
        key = account_key(token)
        now = self.clock()
        if await self._socket_until(key, now) > now:
            return await self.gateway.chat(token, body)
        try:
            return await self.rest.chat(token, body)
        except UpstreamFailure as failure:
            if not moves_to_socket(failure):
                raise
            await self._move_to_socket(key, now)
            log.info("REST chat refused (%s); this account chats over the gateway socket", failure.kind)
            return await self.gateway.chat(token, body)

    async def transport_of(self, token: str) -> str:
        """`rest` or `ws`: where this account's next plain chat goes (for tests and the console)."""
        mode = self.settings.chat_transport
        if mode != "auto":
            return mode
        now = self.clock()
        return "ws" if await self._socket_until(account_key(token), now) > now else "rest"

    async def _socket_until(self, key: str, now: float) -> float:
        cached = self._on_socket.get(key)
        if cached is not None and (self.records is None or now - cached[1] < RECHECK_SECONDS):
            return cached[0]
        until = 0.0
        if self.records is not None:
            value, _ = await self.records.read(f"chat-socket:{key}", now=now)
            if value is not None:
                until = float(value.get("until") or 0.0)
        self._on_socket[key] = (until, now)
        return until

    async def _move_to_socket(self, key: str, now: float) -> None:
        until = now + self.settings.ws_fallback_seconds
        self._on_socket[key] = (until, now)
        if self.records is not None:
            record = f"chat-socket:{key}"
            _, version = await self.records.read(record, now=now)
            # A lost race means another instance moved it at the same moment: the same decision.
            await self.records.write(
                record, {"until": until}, version=version, now=now, ttl=self.settings.ws_fallback_seconds
            )

    async def note_failure(self, failure: UpstreamFailure) -> None:
        """An in-band refusal the chat service saw: the REST client's statsig is re-scraped."""
        await self.rest.note_failure(failure)

    async def upload(self, token: str, name: str, mime: str, data: bytes) -> str:
        return await self.rest.upload(token, name, mime, data)

    async def download(self, token: str, url: str, max_bytes: int) -> tuple[bytes, str]:
        return await self.rest.download(token, url, max_bytes)

    async def list_assets(self, token: str, page_token: str = "") -> Any:
        return await self.rest.list_assets(token, page_token)

    async def upload_file(self, token: str, name: str, mime: str, data: bytes) -> tuple[str, str]:
        return await self.rest.upload_file(token, name, mime, data)

    async def media_post(self, token: str, body: dict[str, Any]) -> Any:
        return await self.rest.media_post(token, body)

    def session(self) -> Any:
        return self.rest.session()

    def __getattr__(self, name: str) -> Any:
        # Anything else the REST client offers (the chat service's `note_failure` after an in-band
        # anti-bot refusal, identities, account calls) is the REST client's own.
        if name == "rest":
            raise AttributeError(name)
        return getattr(self.rest, name)

    async def aclose(self) -> None:
        await self.rest.aclose()
