"""Serving one chat answer over HTTP, for the three chat dialects (chat completions, Responses,
Messages): open the answer, then stream it as SSE or collect it into one JSON object.

What a bare StreamingResponse lacks, and this adds:

* a client that goes away is noticed at once, while the answer is being opened (a reasoning
  model can think for minutes before its first token) and while it streams: the work is
  cancelled, the upstream read aborted and the lease released;
* an SSE comment as heartbeat during long silences, which strict clients tolerate;
* a first byte within `first_byte_seconds` even when the answer is slow to start (a reasoning
  model, a slow upstream): strict clients give up on a connection that stays silent. An answer
  that starts in time goes out as before (its early failures still proper HTTP errors); one that
  does not gets its headers and an SSE comment at that moment, and a failure to start after
  that is the dialect's own terminal error event in the stream.

Both are paid for once per request, not per event: one watcher task reads the ASGI receive
channel for the whole request, and the heartbeat is a timer re-armed once per period.
"""

from __future__ import annotations

import asyncio
import logging
import time
import types
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from core.errors import GatewayError, InternalError, Overloaded
from functions._http import SSE_HEADERS
from functions._meter import Meter, meter_of
from functions._wiring import Deps

if TYPE_CHECKING:  # the chat service and its events load with the first answer
    from core.events import Event

T = TypeVar("T")
COALESCING = "grokgate.coalescing"  # functions._server.EXTENSION: the server's writes, per request
log = logging.getLogger("grokgate.answer")
PING = b": keep-alive\n\n"
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    *((k.encode(), v.encode()) for k, v in SSE_HEADERS.items()),
]


class Final(bytes):
    """The last piece of an SSE body: written together with the end of the HTTP body (one write,
    not two). A body generator yields it and stops."""


class Disconnected(Exception):
    """The client went away."""


class ClientWatch:
    """Watches one request's receive channel; a disconnect cancels the task serving the request.

    One watcher task for the request's whole life: `run()` may be called several times (open,
    then stream or collect) from the same task; `close()` ends the watch.
    """

    __slots__ = ("_gone", "_task", "_watcher")

    def __init__(self, receive: Receive) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._gone = False
        self._watcher = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self._gone = True
                self._task.cancel()
                return

    async def run(self, work: Awaitable[T]) -> T:
        """Await `work`; raise `Disconnected` if the client went away meanwhile."""
        if self._gone:
            raise Disconnected
        try:
            return await work
        except asyncio.CancelledError:
            if self._gone:
                self._task.uncancel()
                raise Disconnected from None
            raise

    def close(self) -> None:
        self._watcher.cancel()


class _Heartbeat:
    """Sends `ping` when nothing was written for `every` seconds; `touch()` on every write."""

    __slots__ = ("_every", "_handle", "_loop", "_ping", "_send", "_sending", "last")

    def __init__(self, send: Send, every: float, ping: bytes) -> None:
        self._loop = asyncio.get_running_loop()
        self._send = send
        self._every = every
        self._ping = ping
        self._sending: asyncio.Task[None] | None = None
        self.last = self._loop.time()
        self._handle = self._loop.call_later(every, self._due)

    def touch(self) -> None:
        self.last = self._loop.time()

    def _due(self) -> None:
        idle = self._loop.time() - self.last
        if idle >= self._every:
            self.last = self._loop.time()
            if self._sending is None or self._sending.done():
                self._sending = self._loop.create_task(self._beat())
            idle = 0.0
        self._handle = self._loop.call_later(self._every - idle, self._due)

    async def _beat(self) -> None:
        try:
            await self._send({"type": "http.response.body", "body": self._ping, "more_body": True})
        except OSError:
            pass

    def stop(self) -> None:
        self._handle.cancel()
        if self._sending is not None:
            self._sending.cancel()


class PushFrom:
    """A body item, not bytes: from now on the serving side may hand the batches of `stream`
    (its `push_to`) to `frame` and write the bytes at once, as they arrive, without the body
    generator; whatever `push_to` does not hand over still comes through the generator."""

    __slots__ = ("frame", "stream")

    def __init__(self, stream: Any, frame: Callable[[list[Event]], bytes]) -> None:
        self.stream = stream
        self.frame = frame


class _DirectWrite:
    """Writes framed batches through the ASGI `send` from outside the serving task (inside the
    upstream's read), when the send completes without suspending, as it does unless the client
    is slow to read. A send that does suspend (flow control) is finished by a task of its own,
    and nothing more is written this way until the serving task has waited for it, so the order
    of writes stays the order of the answer."""

    __slots__ = ("_beat", "_frame", "_send", "_transport", "backlog", "broken")

    def __init__(
        self, send: Send, beat: _Heartbeat, frame: Callable[[list[Event]], bytes], transport: Any = None
    ) -> None:
        self._send = send
        self._beat = beat
        self._frame = frame
        self._transport = transport  # the server's coalescing transport, when it offers one
        self.backlog: asyncio.Future[None] | None = None
        self.broken: OSError | None = None

    def __call__(self, batch: list[Event]) -> bool:
        if self.backlog is not None or self.broken is not None:
            return False  # the serving task writes next, after the backlog
        data = self._frame(batch)
        if not data:
            return True
        sending = self._send({"type": "http.response.body", "body": data, "more_body": True})
        transport = self._transport
        if transport is not None:
            transport.immediate = True
        try:
            waiting = sending.send(None)
        except StopIteration:
            self._beat.touch()
            return True
        except OSError as exc:  # the connection broke: the serving task ends on it
            self.broken = exc
            return True
        finally:
            if transport is not None:
                transport.immediate = False
        self.backlog = asyncio.ensure_future(_finish_send(sending, waiting))
        return True

    async def settle(self) -> None:
        """Before the serving task's own write: the suspended send done, a broken one raised."""
        if self.backlog is not None:
            await self.backlog
            self.backlog = None
        if self.broken is not None:
            raise self.broken

    def close(self) -> None:
        if self.backlog is not None:
            self.backlog.cancel()


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], waiting: Any) -> Generator[Any, Any, None]:
    """Go on with a coroutine that was started by hand and suspended on `waiting`, as a task's
    own step would (the task waits on what it yields and sends back the result)."""
    while True:
        try:
            sent = yield waiting
        except BaseException as exc:
            try:
                waiting = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                waiting = coro.send(sent)
            except StopIteration:
                return


async def _finish_send(coro: Coroutine[Any, Any, None], waiting: Any) -> None:
    await _resume(coro, waiting)


class EventStream(Response):
    """An SSE response from an async generator of bytes (one write per item; a `PushFrom`
    item lets its stream's text go out as it arrives), with heartbeat, under the request's
    `ClientWatch` (closed when the stream ends)."""

    media_type = "text/event-stream"

    def __init__(
        self, body: AsyncGenerator[Any, None], watch: ClientWatch, *, heartbeat: float, ping: bytes = PING
    ) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = list(_SSE_HEADERS)
        self.body_iterator = body
        self.watch = watch
        self.heartbeat = heartbeat
        self.ping = ping

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self.body_iterator
        direct: list[_DirectWrite] = []
        coalescing = (scope.get("extensions") or {}).get(COALESCING)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            beat = _Heartbeat(send, self.heartbeat, self.ping)
            try:
                await self.watch.run(self._pump(send, beat, direct, coalescing))
            except (Disconnected, OSError):
                pass
            finally:
                beat.stop()
        finally:
            self.watch.close()
            try:
                await body.aclose()
            finally:
                for writer in direct:
                    writer.close()

    async def _pump(self, send: Send, beat: _Heartbeat, direct: list[_DirectWrite], coalescing: Any) -> None:
        writer: _DirectWrite | None = None
        async for data in self.body_iterator:
            if type(data) is PushFrom:
                candidate = _DirectWrite(send, beat, data.frame, coalescing)
                if data.stream.push_to(candidate):
                    writer = candidate
                    direct.append(writer)
                continue
            beat.touch()
            if writer is not None and (writer.backlog is not None or writer.broken is not None):
                await writer.settle()
            last = type(data) is Final
            await send({"type": "http.response.body", "body": data, "more_body": not last})
            if last:
                return
        if writer is not None:
            await writer.settle()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def serve_answer(
    request: Request,
    deps: Deps,
    open_answer: Callable[[], Awaitable[Any]],
    stream: Callable[[Any], AsyncGenerator[bytes, None]] | None,
    collect: Callable[[Any], Awaitable[Response]],
    *,
    ping: bytes = PING,
) -> Response:
    """Open the answer (a `ChatStream` or `ToolTurn`), then stream it (`stream` given) or
    collect it, all under one watch.

    `open_answer()` raises a `GatewayError` when no account can start it (a proper HTTP error,
    since nothing was sent yet). A client gone before the end gets no body (499 in the logs).
    """
    watch = ClientWatch(request.receive)
    streaming = False
    heartbeat = deps.settings.heartbeat_seconds
    meter = meter_of(request.scope)
    try:
        early = deps.settings.first_byte_seconds
        if stream is not None and early > 0:
            task = asyncio.ensure_future(open_answer())
            try:
                done, _ = await watch.run(asyncio.wait((task,), timeout=early))
            except BaseException:
                await _cancel(task)
                raise
            if not done:  # slow to start: headers and a comment now, the answer when it comes
                streaming = True
                opening = deps.opening_answers
                opening.add(task)  # a shutdown ends these too (interrupt_streams)
                task.add_done_callback(opening.discard)
                task.add_done_callback(
                    lambda t: _note(meter, t.result() if not t.cancelled() and not t.exception() else None)
                )
                return EventStream(_late(task, stream), watch, heartbeat=heartbeat, ping=ping)
            opened = task.result()
        else:
            opened = await watch.run(open_answer())
        _note(meter, opened)
        if stream is not None:
            streaming = True
            return EventStream(stream(opened), watch, heartbeat=heartbeat, ping=ping)
        began = time.perf_counter()
        try:
            return await watch.run(collect(opened))
        finally:  # a collected answer is read whole before its first byte: all of it is upstream wait
            meter.upstream_wait += time.perf_counter() - began
    except Disconnected:
        return Response(status_code=499)
    finally:
        if not streaming:
            watch.close()


EARLY = b": waiting for the upstream\n\n"


class Failed:
    """An answer that could not start, as a stream: one batch holding its `Fault`, so the
    dialect's own stream code writes its terminal error event."""

    __slots__ = ("error",)

    def __init__(self, error: GatewayError) -> None:
        self.error = error

    async def _batches(self) -> AsyncGenerator[list[Event], None]:
        from core.events import Fault

        yield [Fault(self.error)]

    def __aiter__(self) -> AsyncIterator[list[Event]]:
        return self._batches()

    async def aclose(self) -> None:
        return None


def _note(meter: Meter, answer: Any) -> None:
    """Hand the opened answer to the request's meter (the ledger reads its account and usage)."""
    if answer is None:
        return
    meter.answer = answer
    inner = answer
    while hasattr(inner, "stream"):  # a tool or structured turn: its current chat stream
        inner = inner.stream
    meter.upstream_wait = float(getattr(inner, "upstream_wait", 0.0))


async def _late(
    task: asyncio.Future[Any], stream: Callable[[Any], AsyncGenerator[bytes, None]]
) -> AsyncGenerator[bytes, None]:
    """The body of an answer that was slow to start: a comment first, then the answer."""
    body: AsyncGenerator[bytes, None] | None = None
    try:
        yield EARLY
        try:
            opened = await task
        except GatewayError as exc:
            opened = Failed(exc)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is None or current.cancelling():
                raise  # this request is being cancelled, not only its opening
            opened = Failed(shutting_down())  # interrupt_streams cancelled the opening
        except Exception:
            log.exception("opening a slow answer crashed")
            opened = Failed(InternalError("The answer failed to start."))
        body = stream(opened)
        async for piece in body:
            yield piece
    finally:
        if body is not None:
            await body.aclose()
        else:
            await _cancel(task)


async def _cancel(task: asyncio.Future[Any]) -> None:
    """Cancel the opening of an answer nobody will read; close it if it opened meanwhile."""
    task.cancel()
    try:
        opened = await asyncio.shield(task) if not task.done() else task.result()
    except BaseException:  # cancelled, or failed: either way nothing is held
        return
    await opened.aclose()


def interrupt_streams(deps: Deps) -> int:
    """Graceful shutdown: end every answer still streaming, or still opening after its early
    byte, with the dialect's terminal error; how many."""
    opening = list(deps.opening_answers)
    for task in opening:  # still opening after their early byte: the error ends them too
        task.cancel()
    from core.services.chat import ChatService

    service = next((v for v in deps.built() if isinstance(v, ChatService)), None)
    return len(opening) + (service.interrupt_all(shutting_down()) if service is not None else 0)


def shutting_down() -> Overloaded:
    return Overloaded("The gateway is shutting down; retry the request.", code="shutting_down")
