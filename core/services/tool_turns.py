"""A chat turn with tools: the chat stream, plus one corrective turn when a required call is missing.

`tool_choice` required or forced cannot be enforced upstream. The detector holds the answer
while no call has appeared; when the answer ends without one, the chat stream finishes with
`Finish(RETRY)` (its lease is already released as a success), and this wrapper opens the same
request once more with `ToolSpec.corrective()` appended. The second answer stands as it is: a
call if it makes one, else its text. A failure to start the second turn becomes a `Fault`, so
the stream still ends with its dialect's terminal event.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace

from core.errors import GatewayError
from core.events import Event, Fault, Finish, Usage
from core.services.chat import ChatService, ChatStream
from core.transcode.normalize import ChatRequest
from core.transcode.tools import RETRY


class ToolTurn:
    """Iterates like a `ChatStream` (batches of events); always `aclose()`."""

    def __init__(self, service: ChatService, request: ChatRequest, stream: ChatStream) -> None:
        self.service = service
        self.request = request
        self.stream = stream
        self.retried = False
        self._gen = self._run()

    def __aiter__(self) -> AsyncIterator[list[Event]]:
        return self._gen

    async def aclose(self) -> None:
        await self._gen.aclose()
        await self.stream.aclose()

    async def collect(self) -> list[Event]:
        events: list[Event] = []
        try:
            async for batch in self:
                events.extend(batch)
        finally:
            await self.aclose()
        return events

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


async def open_turn(service: ChatService, request: ChatRequest) -> ChatStream | ToolTurn:
    """Start the answer (raising a `GatewayError` if it cannot start), with the corrective retry
    when the request requires a tool call."""
    spec = request.tools
    if spec is None or not spec.requires_call:
        return await service.open(request)
    request = replace(request, tools=replace(spec, retry=True))
    return ToolTurn(service, request, await service.open(request))
