"""One answer's lifecycle, shared by the three client dialects (chat completions, Responses,
Messages): the protocols the streaming edge drives.

An accumulator turns batches of core events into its dialect's outbound events: `start()` gives
the lifecycle head, `handle(batch)` what a batch becomes, `ended` says a terminal event went out
(a finish or a failure), and `final()` gives the non-streamed body. A stream is what the chat
service returns: an async iterator of batches that must always be closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, TypeVar

from core.events import Event

E = TypeVar("E")


class Accumulator(Protocol[E]):
    id: str

    @property
    def ended(self) -> bool: ...

    def start(self) -> list[E]: ...

    def handle(self, events: list[Event]) -> list[E]: ...

    def final(self) -> dict[str, Any]: ...


class Stream(Protocol):
    def __aiter__(self) -> AsyncIterator[list[Event]]: ...

    async def aclose(self) -> None: ...
