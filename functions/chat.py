"""POST /v1/chat/completions: OpenAI's chat completions over the chat service.

HTTP only: the body becomes a `ChatRequest`, the service yields event batches, the OpenAI
accumulator turns each batch into chunks, and each batch goes out as one write. `EventStream`
adds what a bare StreamingResponse lacks: an SSE comment as heartbeat during long silences, and
on client disconnect an immediate close of the stream (upstream aborted, lease released).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from core.services.chat import ChatService, ChatStream
from core.services.tool_turns import ToolTurn, open_turn
from core.transcode.openai_chat import ChatCompletionRequest, ChatCompletionState, normalize_request
from functions import messages, responses
from functions._app import build_app
from functions._http import SSE_HEADERS, deps_of, json_response, read_json
from functions._wiring import Deps

T = TypeVar("T")
DONE = b"data: [DONE]\n\n"
PING = b": keep-alive\n\n"


def chat_service(deps: Deps) -> ChatService:
    """The process's chat service (Responses and Messages routes reuse it)."""

    def build(d: Deps) -> ChatService:
        return ChatService(d.settings, d.store, d.upstream, fetcher=d.fetcher, clock=d.clock)

    service: ChatService = deps.lazy("chat_service", build)
    return service


class Disconnected(Exception):
    """The client went away."""


async def _watch(receive: Receive, task: asyncio.Task[Any], gone: list[bool]) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.append(True)
            task.cancel()
            return


async def until_disconnect(receive: Receive, work: Awaitable[T]) -> T:
    """Run `work`; if the client disconnects first, cancel it and raise `Disconnected`."""
    task = asyncio.current_task()
    assert task is not None
    gone: list[bool] = []
    watcher = asyncio.ensure_future(_watch(receive, task, gone))
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            task.uncancel()
            raise Disconnected from None
        raise
    finally:
        watcher.cancel()


class EventStream(Response):
    """An SSE response from an async generator of bytes, with heartbeat and disconnect handling."""

    media_type = "text/event-stream"

    def __init__(self, body: AsyncGenerator[bytes, None], *, heartbeat: float, ping: bytes = PING) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            *((k.encode(), v.encode()) for k, v in SSE_HEADERS.items()),
        ]
        self.body_iterator = body
        self.heartbeat = heartbeat
        self.ping = ping

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        last = [time.monotonic()]
        beat = asyncio.ensure_future(self._beat(send, last))

        async def pump() -> None:
            async for data in self.body_iterator:
                last[0] = time.monotonic()
                await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        try:
            await until_disconnect(receive, pump())
        except (Disconnected, OSError):
            pass
        finally:
            beat.cancel()
            await self.body_iterator.aclose()

    async def _beat(self, send: Send, last: list[float]) -> None:
        every = self.heartbeat
        while True:
            await asyncio.sleep(every - (time.monotonic() - last[0]))
            if time.monotonic() - last[0] >= every:
                last[0] = time.monotonic()
                try:
                    await send({"type": "http.response.body", "body": self.ping, "more_body": True})
                except OSError:
                    return


def _frame(chunks: list[dict[str, Any]]) -> bytes:
    dumps = orjson.dumps
    return b"".join([b"data: " + dumps(chunk) + b"\n\n" for chunk in chunks])


async def openai_sse(
    state: ChatCompletionState, stream: ChatStream | ToolTurn
) -> AsyncGenerator[bytes, None]:
    """OpenAI chunks as SSE: role chunk with the first batch, one write per batch, then [DONE]."""
    try:
        head = [state.start()]
        async for batch in stream:
            chunks = state.handle(batch)
            if head:
                chunks = head + chunks
                head = []
            if state.finish_reason is not None or state.error is not None:
                # The answer is complete: [DONE] in the same write; the lease is released after.
                yield _frame(chunks) + DONE
                return
            if chunks:
                yield _frame(chunks)
        yield (_frame(head) if head else b"") + DONE
    finally:
        await stream.aclose()


async def chat_completions(request: Request) -> Response:
    deps = deps_of(request)
    body = await read_json(request, ChatCompletionRequest)
    chat = normalize_request(body)
    service = chat_service(deps)
    settings = deps.settings
    stream_mode = bool(body.stream)
    state = ChatCompletionState(
        body.model,
        reasoning=chat.reasoning,
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
        image_format=settings.image_format,
        collect=not stream_mode,
    )
    try:
        stream = await until_disconnect(request.receive, open_turn(service, chat))
    except Disconnected:
        return Response(status_code=499)
    if stream_mode:
        return EventStream(openai_sse(state, stream), heartbeat=settings.heartbeat_seconds)
    try:
        events = await until_disconnect(request.receive, stream.collect())
    except Disconnected:
        return Response(status_code=499)
    state.handle(events)
    return json_response(state.final())


routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    *responses.routes,
    *messages.routes,
]
app = build_app(routes)
