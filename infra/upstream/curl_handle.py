"""A pooled curl easy handle of the chat transport and the state of the transfer it runs.

curl calls `on_body` and `on_header` from inside its socket action. A body chunk is kept for the
reader (and wakes it), or, when the reader is parked with a sink installed, queued for the
transport's drain at the end of that action (see `infra/upstream/transport.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from curl_cffi.aio import AsyncCurl
from curl_cffi.curl import CURL_WRITEFUNC_PAUSE, Curl

from infra.upstream.curl_internals import LazyTimers

MAX_BUFFERED = 1 << 20  # unread body bytes before the transfer is paused
KEPT_HEADERS = frozenset({b"retry-after", b"cf-mitigated"})  # response headers the callers read


def _nothing() -> None:
    return None


def loop_of(handle: Handle) -> asyncio.AbstractEventLoop:
    assert handle.loop is not None
    return handle.loop


class _NoView:
    acting = False
    after = None


NO_VIEW: LazyTimers = _NoView()  # type: ignore[assignment]  # a handle before its first request


class Handle:
    """A pooled easy handle and the state of the transfer it runs; curl calls `on_body`/`on_header`."""

    __slots__ = (
        "buffered",
        "chunks",
        "curl",
        "deadline",
        "finished",
        "first_at",
        "headers",
        "headers_complete",
        "heard",
        "holding",
        "loop",
        "max_buffered",
        "multi",
        "paused",
        "proxy",
        "queued",
        "quiet_since",
        "ready",
        "sink",
        "status",
        "url",
        "view",
        "waiter",
    )

    def __init__(self, curl: Curl, max_buffered: int, ready: list[Handle]) -> None:
        self.curl = curl
        self.ready = ready  # the transport's handles with data for their sink, drained per action
        self.queued = False
        self.view: LazyTimers = NO_VIEW
        self.max_buffered = max_buffered
        self.multi: AsyncCurl | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.finished: asyncio.Future[None] | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.first_at = 0.0  # monotonic time the oldest unread chunk arrived (pacing only)
        self.holding = False  # a paced read is waiting out its window: new data does not wake it
        self.heard = False  # bytes came since the last silence check
        self.quiet_since = 0.0  # monotonic time of the silence check that last found bytes
        self.paused = False
        self.status = 0
        self.headers: dict[str, str] = {}
        self.headers_complete = False
        self.url = ""
        self.proxy: str | None = None
        self.sink: Callable[[bytes], bool] | None = None
        self.deadline = 0.0

    def reset(self) -> None:
        self.finished = None
        self.waiter = None
        self.sink = None
        self.queued = False
        self.chunks = []
        self.buffered = 0
        self.holding = False
        self.paused = False
        self.status = 0
        self.headers = {}
        self.headers_complete = False

    def wake(self, _: object = None) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def on_body(self, data: bytes) -> int:
        self.heard = True
        if self.buffered >= self.max_buffered:
            # curl keeps this chunk and delivers it again after `curl.pause(CURLPAUSE_CONT)`.
            self.paused = True
            return CURL_WRITEFUNC_PAUSE
        if not self.chunks:
            self.first_at = time.monotonic()
        self.chunks.append(data)
        self.buffered += len(data)
        if self.sink is not None and self.waiter is not None:
            # A parked reader with a sink: what this socket action reads goes to the sink at its
            # end, in one piece (`CurlTransport._drain`), and the reader is not woken for it.
            if not self.queued:
                self.queued = True
                self.ready.append(self)
                if not self.view.acting:  # delivered outside a socket action (rare): drain soon
                    assert self.loop is not None
                    self.loop.call_soon(self.view.after or _nothing)
            return len(data)
        if not self.holding:
            self.wake()
        return len(data)

    def on_header(self, line: bytes) -> int:
        self.heard = True
        if line.startswith(b"HTTP/"):
            # A new status line: an interim 1xx answer came before, forget its headers.
            self.status = int(line.split(b" ", 2)[1])
            self.headers = {}
        elif line == b"\r\n":
            if self.status >= 200:
                self.headers_complete = True
                self.wake()
        else:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name in KEPT_HEADERS:
                self.headers[name.decode("latin-1")] = value.strip().decode("latin-1")
        return len(line)
