"""Our CPU per spaced token on the push path, without curl or sockets: what runs inside curl's
write callback once the bytes are in (decode, filters, the OpenAI chunk, SSE framing, the ASGI
send chain down to the coalescing transport), per 200-token stream fed one frame per read.

The pieces are the real ones (`ChatStream`'s sink, `FrameDecoder`, `ChatCompletionState`,
`functions._answer`'s direct write, uvicorn's httptools `RequestResponseCycle.send` under a
middleware-shaped wrapper, `CoalescingTransport`); the upstream, the loop and the client socket
are stand-ins that do nothing. Reported: median `time.process_time()` per stream over several
runs. Usage: `python -m bench.push_bench [--streams 40] [--runs 7]`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from types import SimpleNamespace
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from bench.decoder_bench import body
from core.catalog import get_model
from core.protocol.frames import FrameDecoder
from core.services.chat import ChatStream
from core.transcode.normalize import ChatRequest
from core.transcode.openai_chat import ChatCompletionState
from functions import _answer
from functions._server import CoalescingTransport
from functions._sse import CHAT

MODEL = "grok-4.20-0309-non-reasoning-heavy"


class _Sink:
    """A transport that takes writes and drops them."""

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False


class _Loop:
    """`call_soon` runs the flush at once: one write per token, as on a spaced stream."""

    def call_soon(self, callback: Any, *args: Any) -> None:
        callback(*args)


class _Upstream:
    sink: Any = None

    def set_sink(self, sink: Any) -> bool:
        self.sink = sink
        return True


def stream_once(lines: list[bytes], service: Any, request: ChatRequest) -> None:
    upstream = _Upstream()
    chat = ChatStream(
        service, request, SimpleNamespace(account_id="a"), upstream, None, FrameDecoder(), [], 0
    )  # type: ignore[arg-type]
    state = ChatCompletionState(MODEL)
    transport = CoalescingTransport(_Sink(), _Loop())  # type: ignore[arg-type]
    cycle = RequestResponseCycle(
        {"method": "POST"},  # type: ignore[typeddict-item]
        transport,  # type: ignore[arg-type]
        FlowControl(transport),  # type: ignore[arg-type]
        logging.getLogger("bench"),
        logging.getLogger("bench"),
        False,
        [],
        asyncio.Event(),
        False,
        True,
        lambda: None,
    )
    cycle.response_started = True
    cycle.chunked_encoding = True

    async def send_with_id(message: Any) -> None:  # the shape of EdgeMiddleware's wrapper
        if message["type"] == "http.response.start":
            message["headers"] = []
        await cycle.send(message)

    beat = SimpleNamespace(touch=lambda: None)
    writer = _answer._DirectWrite(
        send_with_id, beat, lambda batch: CHAT.frame(state.handle(batch)), transport
    )  # type: ignore[arg-type]
    chat.push_to(writer)
    sink = upstream.sink
    for line in lines:
        sink(line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--streams", type=int, default=40)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    bodies = [body(n, args.tokens).splitlines(keepends=True) for n in range(args.streams)]
    service = SimpleNamespace(active=set(), settings=SimpleNamespace(image_format="url"))
    request = ChatRequest(model=get_model(MODEL), message="Tell me about tides.")

    async def run() -> None:
        results = []
        for n in range(args.runs + 1):
            start = time.process_time()
            for lines in bodies:
                stream_once(lines, service, request)
            if n:  # the first run warms up
                results.append((time.process_time() - start) / len(bodies) * 1e6)
        per_stream = statistics.median(results)
        print(
            f"push path, one frame per read: {per_stream:.0f} us per {args.tokens}-token stream "
            f"({per_stream / args.tokens:.2f} us a token)"
        )

    asyncio.run(run())


if __name__ == "__main__":
    main()
