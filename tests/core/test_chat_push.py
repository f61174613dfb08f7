"""`ChatStream.push_to`: text handed over from the upstream's read, everything else through the
iteration, in order, with one release of the lease. The upstream is a fake that keeps the
transport's sink contract (bytes go to the sink only while the reader is parked with nothing
unread; a declining sink wakes the reader with an empty read)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from core.accounts import Lease, Outcome, OutcomeKind
from core.catalog import Tier, get_model
from core.events import Event, Finish, TextDelta, Usage
from core.services.chat import ChatService
from core.settings import Settings
from core.transcode.normalize import ChatRequest

MODEL = "grok-4.20-0309-non-reasoning-heavy"


def resp(**fields: object) -> bytes:
    return orjson.dumps({"result": {"response": fields}}) + b"\n"


def token(text: str) -> bytes:
    return resp(token=text, isThinking=False, messageTag="final", responseId="r-1")


HEAD = orjson.dumps({"result": {"conversation": {"conversationId": "c-1"}}}) + b"\n" + token("A ")
END = resp(isSoftStop=True, responseId="r-1")


class Wire:
    """The upstream response, fed by the test."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.queue.put_nowait(HEAD)
        self.sink: Any = None
        self.parked = False
        self.closed = False

    def set_sink(self, sink: Any) -> bool:
        self.sink = sink
        return True

    def deliver(self, data: bytes) -> None:
        if self.sink is not None and self.parked and self.queue.empty():
            if self.sink(data):
                return
            data = b""
        self.queue.put_nowait(data)

    def end(self) -> None:
        self.queue.put_nowait(None)

    def __aiter__(self) -> Wire:
        return self

    async def __anext__(self) -> bytes:
        self.parked = True
        try:
            item = await self.queue.get()
        finally:
            self.parked = False
        if item is None:
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        self.closed = True


class Upstream:
    def __init__(self) -> None:
        self.wire = Wire()

    async def chat(self, token: str, body: dict[str, Any]) -> Wire:
        return self.wire


class Store:
    def __init__(self) -> None:
        self.released: list[Outcome] = []

    async def lease(self, **_: Any) -> Lease:
        return Lease("l-1", "acct-1", "tok", Tier.HEAVY, "fast", 1e12)

    async def release(self, lease: Lease, outcome: Outcome, now: float) -> bool:
        self.released.append(outcome)
        return True


async def opened(**request: Any) -> tuple[Any, Wire, Store]:
    store, upstream = Store(), Upstream()
    service = ChatService(Settings(), store, upstream, clock=lambda: 1000.0)  # type: ignore[arg-type]
    stream = await service.open(ChatRequest(model=get_model(MODEL), message="hi", **request))
    return stream, upstream.wire, store


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_text_goes_to_emit_and_the_end_through_the_iteration_in_order() -> None:
    stream, wire, store = await opened()
    pushed: list[list[Event]] = []
    batches = aiter(stream)
    assert await anext(batches) == [TextDelta("A ")]  # the first batch: the hold read it
    assert stream.push_to(lambda batch: pushed.append(batch) is None)
    reading = asyncio.ensure_future(anext(batches))
    await settle()
    for text in ("tide ", "is ", "water."):
        wire.deliver(token(text))
    await settle()
    assert pushed == [[TextDelta("tide ")], [TextDelta("is ")], [TextDelta("water.")]]
    assert not reading.done()  # the iteration was not woken for text
    wire.deliver(END)
    last = await asyncio.wait_for(reading, 1)
    assert isinstance(last[0], Usage) and last[0].completion_tokens > 0  # counted the pushed text too
    assert last[-1] == Finish("stop")
    assert await anext(batches, None) is None
    await stream.aclose()
    assert [o.kind for o in store.released] == [OutcomeKind.SUCCESS] and wire.closed


async def test_a_declined_batch_comes_out_of_the_iteration_before_what_follows() -> None:
    stream, wire, store = await opened()
    batches = aiter(stream)
    await anext(batches)
    accept = [False]
    pushed: list[list[Event]] = []

    def emit(batch: list[Event]) -> bool:
        if accept[0]:
            pushed.append(batch)
        return accept[0]

    stream.push_to(emit)
    reading = asyncio.ensure_future(anext(batches))
    await settle()
    wire.deliver(token("kept "))  # declined: the iteration wakes for it
    wire.deliver(token("next "))  # the reader is not parked any more: a plain read
    assert await asyncio.wait_for(reading, 1) == [TextDelta("kept ")]
    assert await asyncio.wait_for(anext(batches), 1) == [TextDelta("next ")]
    accept[0] = True
    reading = asyncio.ensure_future(anext(batches))
    await settle()
    wire.deliver(token("pushed"))
    await settle()
    assert pushed == [[TextDelta("pushed")]]
    wire.deliver(END)
    assert (await asyncio.wait_for(reading, 1))[-1] == Finish("stop")
    await stream.aclose()
    assert len(store.released) == 1


async def test_an_emit_that_raises_fails_the_iteration_and_the_lease_is_released_once() -> None:
    stream, wire, store = await opened()
    batches = aiter(stream)
    await anext(batches)

    def emit(batch: list[Event]) -> bool:
        raise RuntimeError("framing broke")

    stream.push_to(emit)
    reading = asyncio.ensure_future(anext(batches))
    await settle()
    wire.deliver(token("boom"))  # raised inside the upstream's read: must not escape there
    with pytest.raises(RuntimeError, match="framing broke"):
        await asyncio.wait_for(reading, 1)
    await stream.aclose()
    assert [o.kind for o in store.released] == [OutcomeKind.CANCELLED] and wire.closed


async def test_a_stop_sequence_found_in_pushed_text_ends_through_the_iteration() -> None:
    stream, wire, store = await opened(stop=("STOP",))
    batches = aiter(stream)
    pushed: list[list[Event]] = []
    stream.push_to(lambda batch: pushed.append(batch) is None)
    reading = asyncio.ensure_future(anext(batches))  # the first text is held back: nothing yet
    await settle()
    wire.deliver(token("one two "))
    wire.deliver(token("three STOP four"))
    last = await asyncio.wait_for(reading, 1)
    assert last[-1] == Finish("stop", "STOP")
    text = "".join(e.text for b in [*pushed, last] for e in b if isinstance(e, TextDelta))
    assert text == "A one two three "  # held back across batches, cut at the sequence
    await stream.aclose()
    assert [o.kind for o in store.released] == [OutcomeKind.SUCCESS]


async def test_cancelling_the_parked_iteration_closes_the_upstream_and_releases_as_cancelled() -> None:
    stream, wire, store = await opened()
    batches = aiter(stream)
    await anext(batches)
    stream.push_to(lambda batch: True)
    reading = asyncio.ensure_future(anext(batches))
    await settle()
    wire.deliver(token("more "))
    reading.cancel()  # the client went away
    await asyncio.gather(reading, return_exceptions=True)
    await stream.aclose()
    assert wire.closed and [o.kind for o in store.released] == [OutcomeKind.CANCELLED]


async def test_an_upstream_without_a_sink_is_refused() -> None:
    stream, wire, _ = await opened()
    wire.set_sink = None  # type: ignore[assignment,method-assign]  # as the gateway socket's stream
    assert not stream.push_to(lambda batch: True)
    await stream.aclose()
