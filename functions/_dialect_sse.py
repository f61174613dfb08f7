"""The streaming loop the Responses and Messages routes share: a dialect's accumulator over the
chat service's batches, one write per batch, and always the dialect's terminal event."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, Protocol, TypeVar

from core.errors import GatewayError, InternalError, UpstreamError
from core.events import Event, Fault
from functions._answer import Final

E = TypeVar("E")


class Accumulator(Protocol[E]):
    id: str

    def start(self) -> list[E]: ...

    def handle(self, events: list[Event]) -> list[E]: ...


class Stream(Protocol):
    def __aiter__(self) -> AsyncIterator[list[Event]]: ...

    async def aclose(self) -> None: ...


async def dialect_sse(
    state: Accumulator[Any],
    stream: Stream,
    frame: Callable[[list[Any]], bytes],
    ended: Callable[[], bool],
    log: logging.Logger,
) -> AsyncGenerator[bytes, None]:
    """The lifecycle head goes out with the first batch; a failure, a crash or an upstream that
    stops without an end becomes the dialect's own error event, so no stream ends silently."""
    try:
        head = state.start()
        try:
            async for batch in stream:
                events = head + state.handle(batch)
                head = []
                if events:
                    yield Final(frame(events)) if ended() else frame(events)
        except GatewayError as exc:
            yield Final(frame(head + state.handle([Fault(exc)])))
            return
        except Exception:
            log.exception("stream %s crashed", state.id)
            yield Final(
                frame(head + state.handle([Fault(InternalError(f"The stream of {state.id} failed."))]))
            )
            return
        if not ended():
            yield Final(
                frame(
                    head + state.handle([Fault(UpstreamError("The upstream stream ended without an end."))])
                )
            )
    finally:
        await stream.aclose()
