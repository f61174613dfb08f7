"""Gateway CPU per spaced-token stream in one process, without the HTTP server: push path on/off.

The simulator runs in a child on core 1; this process, on core 0 under uvloop, runs the chat
path as a request does past uvicorn's parser: `ChatService.open` (SQLite store, the real curl
transport), the dialects' SSE loop (chat completions), `EventStream`, and uvicorn's httptools `send` over the
coalescing transport, whose socket is a stand-in that drops the bytes. Two legs alternate: the
stream as it is (text pushed from curl's read, `ChatStream.push_to`) and the same stream with
its `push_to` hidden (every token through the serving task). Reported per leg: this process's
`time.process_time()` per stream, the median of the rounds.

Usage: `python -m bench.push_cpu [--delay-ms 1] [--streams 200] [--in-flight 16] [--rounds 3]`
(`--delay-ms 0`: one write per frame, no pause).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

import uvloop
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from bench.sim_throughput import ROOT, _free_port, _wait_ready
from core.accounts import NewAccount
from core.catalog import Tier, get_model
from core.events import Event
from core.services.chat import ChatService
from core.settings import Settings
from core.transcode.normalize import ChatRequest
from core.transcode.openai_chat import ChatCompletionState
from functions._answer import COALESCING, ClientWatch, EventStream
from functions._server import CoalescingTransport
from functions._sse import CHAT, sse
from infra.state.sqlite import SQLiteAccountStore
from infra.upstream.client import CurlUpstream

MODEL = "grok-4.20-0309-non-reasoning-heavy"
TOKENS = [f"sim-heavy-unlimited-push{i}" for i in range(64)]


class _Null:
    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False


class _Hidden:
    """The stream without `push_to`: every batch through the iteration."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __aiter__(self) -> AsyncIterator[list[Event]]:
        return self._stream.__aiter__()  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self._stream.aclose()


async def one(service: ChatService, request: ChatRequest, push: bool) -> None:
    loop = asyncio.get_running_loop()
    stream = await service.open(request)
    transport = CoalescingTransport(_Null(), loop)  # type: ignore[arg-type]
    cycle = RequestResponseCycle(
        {"type": "http", "method": "POST"},  # type: ignore[typeddict-item]
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

    async def send(message: Any) -> None:  # the shape of EdgeMiddleware's wrapper
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", [])]
        await cycle.send(message)

    never: asyncio.Future[Any] = loop.create_future()

    async def receive() -> Any:
        return await never

    state = ChatCompletionState(MODEL)
    body = sse(state, stream if push else _Hidden(stream), CHAT)  # type: ignore[arg-type]
    response = EventStream(body, ClientWatch(receive), heartbeat=15.0)  # type: ignore[arg-type]
    await response({"type": "http", "extensions": {COALESCING: transport}}, receive, send)
    if not cycle.response_complete:
        raise RuntimeError("a stream did not end")


async def leg(service: ChatService, request: ChatRequest, push: bool, streams: int, in_flight: int) -> float:
    left = streams

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await one(service, request, push)

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return (time.process_time() - cpu) / streams * 1000


async def measure(url: str, args: argparse.Namespace) -> None:
    settings = Settings(upstream_url=url, assets_url=url, retry_budget=0)
    store = SQLiteAccountStore.from_url(f"sqlite:///{tempfile.mkdtemp()}/push.db")
    await store.add([NewAccount(t, Tier.HEAVY) for t in TOKENS], time.time())
    upstream = CurlUpstream(settings)
    service = ChatService(settings, store, upstream, clock=time.time)
    paced = " per_frame" if args.delay_ms == 0 else f" delay_ms={args.delay_ms}"
    request = ChatRequest(model=get_model(MODEL), message=f"Tell me about tides. #sim tokens=200{paced}")
    modes = {"both": (False, True), "task": (False,), "push": (True,)}[args.mode]
    try:
        for push in modes:  # warm
            await leg(service, request, push, args.in_flight, args.in_flight)
        figures: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.rounds):
            for push in modes:
                figures[push].append(await leg(service, request, push, args.streams, args.in_flight))
        for push, label in ((False, "through the serving task"), (True, "pushed from curl's read")):
            if push not in modes:
                continue
            runs = " / ".join(f"{x:.2f}" for x in figures[push])
            print(f"{label:>25}: {statistics.median(figures[push]):.2f} ms CPU per stream ({runs})")
    finally:
        await upstream.close()
        await store.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=int, default=1)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mode", choices=("both", "task", "push"), default="both")
    args = parser.parse_args()
    port = _free_port()
    cmd = [sys.executable, "-m", "infra.sim", "--port", str(port)]
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", "1", *cmd]
        os.sched_setaffinity(0, {0})
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(port)
        print(
            f"{args.streams} streams a leg, {args.in_flight} in flight, 200 tokens, delay_ms={args.delay_ms}"
        )
        uvloop.run(measure(f"http://127.0.0.1:{port}", args))
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
