"""`FakeUpstream(handler)`: the `Upstream` and `ImagineUpstream` ports answered by a function, in process.

httpx's MockTransport idea, for Grok's web app: every port call becomes a `Call` handed to
`handler(call)` (a plain or an async function). What the handler returns is the answer; what it
raises (a classified `UpstreamFailure`) is the upstream refusing the call, as the real adapter
raises a non-200 answer. For a stream the handler returns its items in order:

    chat (E1)       bytes pass as they are; a dict is one NDJSON line; an `UpstreamFailure`
                    is raised where it stands (a reset mid-stream). `answer("Hi")` builds one.
    connect (E4)    the Imagine socket: each dict is one frame read; an `UpstreamFailure` as above.
                    What the gateway sends on the socket lands in `call.sent`.
    upload, imagine_upload  the file id (str)
    download        (bytes, content type)
    upload_file     (file id, asset path)
    list_assets, media_post  the upstream's JSON

No HTTP, no simulator: tests of the services' failover run on it, and so could a sandbox.
`calls` keeps every call in order (tokens included: this is a test double, never a real client).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.protocol.classify import UpstreamFailure

Item = bytes | dict[str, Any] | UpstreamFailure


@dataclass(slots=True)
class Call:
    """One call of the port: `kind` is the method (`imagine_upload` for the Imagine upload), the
    other fields are its arguments (those the method has)."""

    kind: str
    token: str
    body: dict[str, Any] | None = None
    name: str = ""
    mime: str = ""
    data: bytes = b""
    url: str = ""
    sent: list[dict[str, Any]] = field(default_factory=list)


Handler = Callable[[Call], Any]


def answer(text: str, *, response_id: str = "r-1") -> list[Item]:
    """The lines of a plain streamed answer: one token a word, then the full message (the end)."""
    words = text.split(" ")
    tokens = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
    lines: list[Item] = [
        {
            "result": {
                "response": {
                    "token": t,
                    "isThinking": False,
                    "messageTag": "final",
                    "responseId": response_id,
                }
            }
        }
        for t in tokens
    ]
    model = {"responseId": response_id, "message": text, "sender": "assistant", "streamErrors": []}
    lines.append({"result": {"response": {"modelResponse": model}}})
    return lines


def inband_error(message: str, code: int | None = None) -> dict[str, Any]:
    """An error line inside an HTTP 200 stream (an anti-bot refusal is code 7)."""
    error: dict[str, Any] = {"message": message}
    if code is not None:
        error["code"] = code
    return {"error": error}


class _Stream:
    """An open chat body or Imagine socket over the handler's items; `aclose()` is idempotent."""

    def __init__(self, items: Iterable[Item], *, lines: bool) -> None:
        self._items = iter(items)
        self._lines = lines
        self.closed = False
        self.sent: list[dict[str, Any]] = []

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._read()

    async def _read(self) -> AsyncIterator[Any]:
        for item in self._items:
            if self.closed:
                return
            if isinstance(item, UpstreamFailure):
                raise item
            if isinstance(item, dict) and self._lines:
                yield orjson.dumps(item) + b"\n"
            else:
                yield item

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def aclose(self) -> None:
        self.closed = True


class FakeUpstream:
    """Args:
    handler: `handler(call)` answers every call (see the module docstring); it may be async.

    `imagine` is the same fake as an `ImagineUpstream`; `streams` are the chat bodies and
    sockets it opened, so a test can see each was closed.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[Call] = []
        self.streams: list[_Stream] = []
        self.closed = False
        self.imagine = _Imagine(self)

    async def call(self, call: Call) -> Any:
        self.calls.append(call)
        result = self.handler(call)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def chat(self, token: str, body: dict[str, Any]) -> _Stream:
        stream = _Stream(await self.call(Call("chat", token, body=body)), lines=True)
        self.streams.append(stream)
        return stream

    async def upload(self, token: str, name: str, mime: str, data: bytes) -> str:
        return str(await self.call(Call("upload", token, name=name, mime=mime, data=data)))

    async def download(self, token: str, url: str, max_bytes: int) -> tuple[bytes, str]:
        data, mime = await self.call(Call("download", token, url=url))
        return bytes(data)[:max_bytes], str(mime)

    async def list_assets(self, token: str, page_token: str = "") -> Any:
        return await self.call(Call("list_assets", token, body={"pageToken": page_token}))

    async def upload_file(self, token: str, name: str, mime: str, data: bytes) -> tuple[str, str]:
        file_id, path = await self.call(Call("upload_file", token, name=name, mime=mime, data=data))
        return str(file_id), str(path)

    async def media_post(self, token: str, body: dict[str, Any]) -> Any:
        return await self.call(Call("media_post", token, body=body))

    async def aclose(self) -> None:
        self.closed = True


class _Imagine:
    """The fake's `ImagineUpstream` face: the E4 socket and E6 uploads, through the same handler."""

    def __init__(self, fake: FakeUpstream) -> None:
        self._fake = fake

    async def connect(self, token: str) -> _Stream:
        call = Call("connect", token)
        socket = _Stream(await self._fake.call(call), lines=False)
        socket.sent = call.sent
        self._fake.streams.append(socket)
        return socket

    async def upload(self, token: str, name: str, mime: str, data: bytes) -> str:
        return str(await self._fake.call(Call("imagine_upload", token, name=name, mime=mime, data=data)))

    async def aclose(self) -> None:
        self._fake.closed = True
