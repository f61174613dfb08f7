"""functions._server: writes of one loop iteration leave as one, and a real server streams."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import httpx

from functions._answer import COALESCING
from functions._server import CoalescingHttpToolsProtocol, CoalescingTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


async def test_writes_of_one_iteration_leave_as_one_write_in_order() -> None:
    raw = RecordingTransport()
    t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    t.write(b"5\r\nhello\r\n")
    assert raw.writes == []  # nothing yet: the iteration is not over
    await asyncio.sleep(0)
    assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\n5\r\nhello\r\n"]
    t.write(b"later")
    await asyncio.sleep(0)
    assert raw.writes[-1] == b"later" and len(raw.writes) == 2
    assert t.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest is the transport's


async def test_close_sends_what_is_pending_and_abort_drops_it() -> None:
    raw = RecordingTransport()
    t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"last words")
    t.close()
    assert raw.writes == [b"last words"] and raw.closed
    await asyncio.sleep(0)
    assert raw.writes == [b"last words"]  # the scheduled flush finds nothing left

    raw2 = RecordingTransport()
    t2 = CoalescingTransport(raw2, asyncio.get_running_loop())  # type: ignore[arg-type]
    t2.write(b"dropped")
    t2.abort()
    await asyncio.sleep(0)
    assert raw2.writes == [] and raw2.aborted


async def test_nothing_is_written_to_a_transport_that_is_closing() -> None:
    raw = RecordingTransport()
    t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"too late")
    raw.closed = True  # the peer went away meanwhile
    await asyncio.sleep(0)
    assert raw.writes == []


async def test_an_immediate_write_leaves_at_once_unless_writes_are_pending() -> None:
    raw = RecordingTransport()
    t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.immediate = True  # a direct write from the upstream's read
    t.write(b"a")
    assert raw.writes == [b"a"]
    t.immediate = False
    t.write(b"b")
    t.immediate = True
    t.write(b"c")  # behind a pending write: joined to it, in order
    assert raw.writes == [b"a"]
    await asyncio.sleep(0)
    assert raw.writes == [b"a", b"bc"]


SEEN: list[Any] = []


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    SEEN.append(scope.get("extensions", {}).get(COALESCING))
    await receive()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
    )
    await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
    await asyncio.sleep(0.2)  # a later chunk: written in a later iteration, on its own
    await send({"type": "http.response.body", "body": b"data: 2\n\n", "more_body": False})


def test_a_real_server_streams_through_the_protocol() -> None:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, http=CoalescingHttpToolsProtocol, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        arrivals: list[tuple[float, bytes]] = []
        with httpx.Client() as client, client.stream("POST", f"http://127.0.0.1:{port}/", content=b"{}") as r:
            assert r.status_code == 200
            for chunk in r.iter_raw():
                arrivals.append((time.monotonic(), chunk))
        assert b"".join(c for _, c in arrivals) == b"data: 1\n\ndata: 2\n\n"
        assert arrivals[0][1] == b"data: 1\n\n"  # the first chunk did not wait for the second
        assert arrivals[-1][0] - arrivals[0][0] >= 0.15
        assert isinstance(SEEN[-1], CoalescingTransport)  # where the app's direct writes find it
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
