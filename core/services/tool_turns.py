"""Chat turns that may need a second attempt: a required tool call that is missing (`ToolTurn`),
an answer that is not the JSON asked for (`StructuredTurn`).

`tool_choice` required or forced cannot be enforced upstream. The detector holds the answer
while no call has appeared; when the answer ends without one, the chat stream finishes with
`Finish(RETRY)` (its lease is already released as a success), and this wrapper opens the same
request once more with `ToolSpec.corrective()` appended. The second answer stands as it is: a
call if it makes one, else its text. A failure to start the second turn becomes a `Fault`, so
the stream still ends with its dialect's terminal event.

Structured output (`request.output`) is checked on the whole answer, so the visible text is held
until the answer ends (reasoning streams as it comes, and heartbeats keep the connection alive):
valid JSON goes out alone, as one text delta, then the finish; otherwise the turn runs once more
with the previous answer and what was wrong appended, and a second failure ends the answer with
a `StructuredOutputFailed` fault (an HTTP 502 when nothing was sent yet). A tool call instead of
an answer passes through unchecked.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import replace

from core.errors import GatewayError
from core.events import Event, Fault, Finish, TextDelta, ToolCall, Usage
from core.services.chat import BatchStream, ChatService, ChatStream
from core.transcode.normalize import ChatRequest
from core.transcode.structured import StructuredOutputFailed
from core.transcode.tools import RETRY


class _Retrying(BatchStream):
    """A turn over an inner stream that it may replace once: iterates like a `ChatStream`
    (batches of events); always `aclose()`."""

    stream: ChatStream | ToolTurn

    def __init__(self, service: ChatService, request: ChatRequest) -> None:
        self.service = service
        self.request = request
        self.retried = False
        self._gen = self._run()

    async def aclose(self) -> None:
        await self._gen.aclose()
        await self.stream.aclose()

    def _run(self) -> AsyncGenerator[list[Event], None]:
        raise NotImplementedError


class ToolTurn(_Retrying):
    """The turn with one corrective retry when a required tool call is missing."""

    def __init__(self, service: ChatService, request: ChatRequest, stream: ChatStream) -> None:
        self.stream = stream
        super().__init__(service, request)

    async def _run(self) -> AsyncGenerator[list[Event], None]:
        while True:
            retry = False
            async for batch in self.stream:
                if batch and isinstance(batch[-1], Finish) and batch[-1].reason == RETRY:
                    retry = True
                    batch = [e for e in batch[:-1] if not isinstance(e, Usage)]
                if batch:
                    yield batch
            await self.stream.aclose()
            if not retry:
                return
            spec = self.request.tools
            assert spec is not None
            again = replace(
                self.request,
                message=self.request.message + "\n\n" + spec.corrective(),
                tools=replace(spec, retry=False),
            )
            self.retried = True
            try:
                self.stream = await self.service.open(again)
            except GatewayError as exc:
                yield [Fault(exc)]
                return


class StructuredTurn(_Retrying):
    """The turn whose text is released only once it is the JSON asked for."""

    def __init__(self, service: ChatService, request: ChatRequest, stream: ChatStream | ToolTurn) -> None:
        assert request.output is not None
        self.output = request.output
        self.stream = stream
        super().__init__(service, request)

    async def _run(self) -> AsyncGenerator[list[Event], None]:
        while True:
            text: list[str] = []
            called = False
            finish: list[Event] = []
            async for batch in self.stream:
                out: list[Event] = []
                for event in batch:
                    if called:
                        out.append(event)
                    elif isinstance(event, TextDelta):
                        text.append(event.text)
                    elif isinstance(event, ToolCall):
                        called = True  # a call, not the answer: what follows passes unchecked
                        out.append(event)
                    elif isinstance(event, (Usage, Finish)):
                        finish.append(event)
                    else:
                        out.append(event)  # reasoning, faults: as they come
                if out:
                    yield out
            await self.stream.aclose()
            if called or not finish or not isinstance(finish[-1], Finish):
                if finish:
                    yield finish
                return
            answer = "".join(text)
            value, problem = self.output.check(answer)
            if value is not None:
                yield [TextDelta(value), *finish]
                return
            if self.retried:
                yield [
                    Fault(StructuredOutputFailed(f"The model's answer is not the JSON asked for: {problem}."))
                ]
                return
            self.retried = True
            again = replace(
                self.request, message=self.request.message + "\n\n" + self.output.corrective(answer, problem)
            )
            try:
                self.stream = await _open(self.service, again)
            except GatewayError as exc:
                yield [Fault(exc)]
                return


Turn = ChatStream | ToolTurn | StructuredTurn


async def open_turn(service: ChatService, request: ChatRequest) -> Turn:
    """Start the answer (raising a `GatewayError` if it cannot start), with the corrective retry
    when the request requires a tool call or structured output."""
    if request.output is not None:
        return StructuredTurn(service, request, await _open(service, request))
    return await _open(service, request)


async def _open(service: ChatService, request: ChatRequest) -> ChatStream | ToolTurn:
    spec = request.tools
    if spec is None or not spec.requires_call:
        return await service.open(request)
    request = replace(request, tools=replace(spec, retry=True))
    return ToolTurn(service, request, await service.open(request))
