"""Every request the simulator sees, kept for tests to assert what the gateway sent."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from typing import Any, NamedTuple

import orjson
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestRecord:
    """One request. Headers, cookies and JSON are decoded lazily so logging stays cheap on hot paths."""

    __slots__ = (
        "_headers",
        "body",
        "kind",
        "method",
        "path",
        "query",
        "raw_headers",
        "status",
        "time",
        "ws_messages",
    )

    def __init__(self, scope: Scope, body: bytes) -> None:
        self.kind: str = scope["type"]  # "http" or "websocket"
        self.method: str = scope.get("method", "GET")
        self.path: str = scope["path"]
        self.query: str = scope.get("query_string", b"").decode("latin-1")
        self.raw_headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        self.body = body
        self.status: int | None = None
        self.time = time.time()
        self.ws_messages: list[Any] = []  # client messages on a WebSocket (parsed JSON, else text/bytes)
        self._headers: dict[str, str] | None = None

    @property
    def headers(self) -> dict[str, str]:
        """Lower-cased names; repeated headers joined with ", " (cookies with "; ")."""
        if self._headers is None:
            out: dict[str, str] = {}
            for raw_name, raw_value in self.raw_headers:
                name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
                sep = "; " if name == "cookie" else ", "
                out[name] = out[name] + sep + value if name in out else value
            self._headers = out
        return self._headers

    @property
    def cookies(self) -> dict[str, str]:
        return cookie_parser(self.headers.get("cookie", ""))

    @property
    def json(self) -> Any:
        """The parsed JSON body, or None when the body is empty or not JSON."""
        if not self.body:
            return None
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None

    def __repr__(self) -> str:
        return f"<RequestRecord {self.method} {self.path} -> {self.status}>"


class RequestLog:
    """A bounded, list-like log (newest last)."""

    def __init__(self, maxlen: int = 20000) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=maxlen)

    def append(self, record: RequestRecord) -> None:
        self._records.append(record)

    def clear(self) -> None:
        self._records.clear()

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(list(self._records))

    def __getitem__(self, index: int) -> RequestRecord:
        return self._records[index]

    def find(
        self, path: str | None = None, method: str | None = None, prefix: str | None = None
    ) -> list[RequestRecord]:
        return [
            r
            for r in list(self._records)
            if (path is None or r.path == path)
            and (method is None or r.method == method.upper())
            and (prefix is None or r.path.startswith(prefix))
        ]

    def chat_turns(self) -> list[ChatTurn]:
        """Every chat turn, oldest first, whichever transport carried it."""
        turns: list[ChatTurn] = []
        for record in list(self._records):
            turn = (
                _rest_turn(record)
                if record.path == REST_CHAT_PATH
                else _ws_turn(record)
                if record.path in GATEWAY_PATHS
                else None
            )
            if turn is not None:
                turns.append(turn)
        return turns

    def last_chat(self) -> ChatTurn:
        turns = self.chat_turns()
        if not turns:
            raise LookupError("no chat turn logged")
        return turns[-1]

    def last(self, path: str | None = None, prefix: str | None = None) -> RequestRecord:
        found = self.find(path=path, prefix=prefix)
        if not found:
            raise LookupError(f"no request logged for path={path!r} prefix={prefix!r}")
        return found[-1]


REST_CHAT_PATH = "/rest/app-chat/conversations/new"
GATEWAY_PATHS = ("/ws/mgw/", "/ws/mgw")


class ChatTurn(NamedTuple):
    """One chat turn as it reached the simulator, over REST or the gateway WebSocket."""

    message: str  # the whole prompt
    file_ids: list[str]
    mode: str
    transport: str  # "rest" or "ws"
    record: RequestRecord


def _rest_turn(record: RequestRecord) -> ChatTurn | None:
    body = record.json
    if not isinstance(body, dict) or "modeId" not in body:
        return None  # a media generation (modelName), not a chat turn
    return ChatTurn(
        str(body.get("message", "")), list(body.get("fileAttachments") or []), body["modeId"], "rest", record
    )


def _ws_turn(record: RequestRecord) -> ChatTurn | None:
    mode, text, files = "", None, []
    for message in record.ws_messages:
        event = message.get("event") if isinstance(message, dict) else None
        if not isinstance(event, dict):
            continue
        if event.get("type") == "session.create":
            mode = str((event.get("session") or {}).get("model") or "")
        elif event.get("type") == "conversation.item.create":
            item = event.get("item") or {}
            chunks = (item.get("x_grok") or {}).get("input_chunks") or []
            text = "".join(c["text"].get("text", "") for c in chunks if isinstance(c.get("text"), dict))
            files = list(item.get("file_attachment_ids") or [])
    return None if text is None else ChatTurn(text, files, mode, "ws", record)


class LogMiddleware:
    """Reads the whole body up front (simulator bodies are small), logs it, then replays it to the app."""

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            record = RequestRecord(scope, b"")
            self.log.append(record)
            scope["sim.record"] = record
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        record = RequestRecord(scope, b"".join(chunks))
        self.log.append(record)
        scope["sim.record"] = record
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": record.body, "more_body": False}
            return await receive()

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        await self.app(scope, replay, send_and_record)
