"""functions._answer at the ASGI boundary: what goes out, in how many messages, and when."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from functions._answer import ClientWatch, Disconnected, EventStream, Final, PushFrom


class Channel:
    """An ASGI receive that disconnects on demand, and a send that records."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.gone = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def bodies(self) -> list[tuple[bytes, bool]]:
        return [(m["body"], m["more_body"]) for m in self.sent if m["type"] == "http.response.body"]


async def test_the_final_piece_ends_the_body_in_the_same_message() -> None:
    closed = []

    async def body() -> AsyncGenerator[bytes, None]:
        try:
            yield b"data: 1\n\n"
            yield Final(b"data: [DONE]\n\n")
            yield b"never sent"
        finally:
            closed.append(True)

    ch = Channel()
    await EventStream(body(), ClientWatch(ch.receive), heartbeat=30)({}, ch.receive, ch.send)
    assert ch.sent[0]["type"] == "http.response.start"
    assert ch.bodies() == [(b"data: 1\n\n", True), (b"data: [DONE]\n\n", False)]
    assert closed == [True]


async def test_a_body_without_a_final_piece_still_ends() -> None:
    async def body() -> AsyncGenerator[bytes, None]:
        yield b"data: 1\n\n"

    ch = Channel()
    await EventStream(body(), ClientWatch(ch.receive), heartbeat=30)({}, ch.receive, ch.send)
    assert ch.bodies() == [(b"data: 1\n\n", True), (b"", False)]


async def test_heartbeat_during_silence_only() -> None:
    async def body() -> AsyncGenerator[bytes, None]:
        yield b"data: 1\n\n"
        await asyncio.sleep(0.35)
        yield Final(b"data: 2\n\n")

    ch = Channel()
    await EventStream(body(), ClientWatch(ch.receive), heartbeat=0.1, ping=b": p\n\n")(
        {}, ch.receive, ch.send
    )
    bodies = [b for b, _ in ch.bodies()]
    assert bodies[0] == b"data: 1\n\n" and bodies[-1] == b"data: 2\n\n"
    assert 2 <= bodies.count(b": p\n\n") <= 4  # ~one per 0.1 s of the 0.35 s silence
    assert set(bodies[1:-1]) == {b": p\n\n"}


async def test_a_disconnect_cancels_the_work_and_closes_the_body() -> None:
    closed = []

    async def body() -> AsyncGenerator[bytes, None]:
        try:
            yield b"data: 1\n\n"
            await asyncio.sleep(30)
            yield b"late"
        finally:
            closed.append(True)

    ch = Channel()

    async def serve() -> None:  # the watch belongs to the task serving the request
        await EventStream(body(), ClientWatch(ch.receive), heartbeat=30)({}, ch.receive, ch.send)

    serving = asyncio.ensure_future(serve())
    await asyncio.sleep(0.05)
    ch.gone.set()
    await asyncio.wait_for(serving, 2)
    assert closed == [True]
    assert all(b != b"late" for b, _ in ch.bodies())


async def test_watch_turns_a_disconnect_during_open_into_disconnected() -> None:
    ch = Channel()

    async def serve() -> None:
        watch = ClientWatch(ch.receive)
        try:
            await watch.run(asyncio.sleep(30))
        finally:
            watch.close()

    task = asyncio.ensure_future(serve())
    await asyncio.sleep(0.05)
    ch.gone.set()
    with pytest.raises(Disconnected):
        await asyncio.wait_for(task, 2)


class Pushing:
    """A stream whose text the serving side may push: keeps the emit it is given."""

    def __init__(self) -> None:
        self.emit: Any = None

    def push_to(self, emit: Any) -> bool:
        self.emit = emit
        return True


async def test_pushed_writes_go_out_at_once_and_in_order_behind_a_slow_client() -> None:
    ch = Channel()
    window = asyncio.Event()  # the client's receive window: a write of b"slow" waits for it
    plain_send = ch.send

    async def send(message: dict[str, Any]) -> None:
        if message.get("body") == b"slow":
            await window.wait()
        await plain_send(message)

    stream, ended = Pushing(), asyncio.Event()

    async def body() -> AsyncGenerator[Any, None]:
        yield b"head"
        yield PushFrom(stream, lambda batch: b"".join(batch))
        await ended.wait()  # the serving task is parked, as on an upstream read
        yield Final(b"tail")

    async def serve() -> None:  # the watch belongs to the task serving the request
        await EventStream(body(), ClientWatch(ch.receive), heartbeat=30)({}, ch.receive, send)

    serving = asyncio.ensure_future(serve())
    while stream.emit is None:
        await asyncio.sleep(0)
    assert stream.emit([b"a"]) and ch.bodies()[-1] == (b"a", True)  # written from outside the task
    assert stream.emit([b"slow"])  # taken; its send waits for the client
    assert not stream.emit([b"b"])  # refused until the slow write is out: order first
    ended.set()
    await asyncio.sleep(0.01)
    assert [b for b, _ in ch.bodies()] == [b"head", b"a"]  # the tail waits behind the slow write
    window.set()
    await asyncio.wait_for(serving, 1)
    assert ch.bodies() == [(b"head", True), (b"a", True), (b"slow", True), (b"tail", False)]


async def test_a_disconnect_while_text_is_pushed_ends_the_stream() -> None:
    ch, stream, closed = Channel(), Pushing(), []

    async def body() -> AsyncGenerator[Any, None]:
        try:
            yield b"head"
            yield PushFrom(stream, lambda batch: b"".join(batch))
            await asyncio.sleep(60)
            yield Final(b"never")
        finally:
            closed.append(True)

    async def serve() -> None:  # the watch belongs to the task serving the request
        await EventStream(body(), ClientWatch(ch.receive), heartbeat=30)({}, ch.receive, ch.send)

    serving = asyncio.ensure_future(serve())
    while stream.emit is None:
        await asyncio.sleep(0)
    assert stream.emit([b"token"])
    ch.gone.set()
    await asyncio.wait_for(serving, 1)
    assert closed == [True] and [b for b, _ in ch.bodies()] == [b"head", b"token"]
