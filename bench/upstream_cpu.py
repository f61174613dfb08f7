"""Client CPU per streamed chat request: curl_cffi's `AsyncSession` against the chat transport.

The simulator runs in a child process on one core; this process, pinned to the other, sends the
same 200-token chat POSTs (the gateway's real body and headers) first through
`AsyncSession.request(stream=True)`, read the way the chat client read it before the transport,
then through `CurlUpstream.chat()` (infra/upstream/transport.py). Reported: this process's
`time.process_time()` per request, and requests a second.
Usage: `python -m bench.upstream_cpu [--requests 2000] [--in-flight 16]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from curl_cffi.requests.models import STREAM_END

from bench.sim_throughput import ROOT, _free_port, _wait_ready
from core.protocol.payload import CHAT_PATH, chat_body
from core.settings import Settings
from infra.upstream.client import CurlUpstream

TOKEN = "sim-super-unlimited-bench"
PROMPT = "[user]: a benchmark #sim tokens=200"

Request = Callable[[], Awaitable[int]]


def via_session(upstream: CurlUpstream) -> Request:
    """The chat call as it was: one shared AsyncSession, the body read off its queue."""
    url = upstream.settings.upstream_url + CHAT_PATH
    timeout = (upstream.settings.connect_timeout, upstream.settings.read_timeout)
    body = chat_body(PROMPT, "fast")

    async def request() -> int:
        response = await upstream.session().request(
            "POST",
            url,
            data=orjson.dumps(body),
            headers=upstream._headers(TOKEN),
            stream=True,
            timeout=timeout,
            http_version="v1",
            default_headers=False,
        )
        size = 0
        while (chunk := await response.queue.get()) is not STREAM_END:
            size += len(chunk)
        await response.aclose()
        return size

    return request


def via_transport(upstream: CurlUpstream) -> Request:
    body = chat_body(PROMPT, "fast")

    async def request() -> int:
        stream = await upstream.chat(TOKEN, body)
        size = 0
        async for chunk in stream:
            size += len(chunk)
        await stream.aclose()
        return size

    return request


async def run(request: Request, count: int, in_flight: int) -> tuple[float, float, int]:
    """(CPU seconds per request, requests a second, body bytes of one answer)."""
    for _ in range(50):  # warm: handles, connections, first-use imports
        size = await request()
    left = count

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            if await request() != size:
                raise RuntimeError("answers differ in size")

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    return cpu / count, count / wall, size


async def measure(url: str, make: Callable[[CurlUpstream], Request], count: int, in_flight: int) -> Any:
    upstream = CurlUpstream(Settings(upstream_url=url, assets_url=url))
    try:
        return await run(make(upstream), count, in_flight)
    finally:
        await upstream.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=16)
    args = parser.parse_args(argv)
    port = _free_port()
    cmd = [sys.executable, "-m", "infra.sim", "--port", str(port)]
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", "0", *cmd]
        os.sched_setaffinity(0, {1})
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(port)
        url = f"http://127.0.0.1:{port}"
        print(f"{args.requests} requests, {args.in_flight} in flight, 200-token answers")
        for label, make in (("AsyncSession", via_session), ("transport", via_transport)):
            cpu, rate, size = asyncio.run(measure(url, make, args.requests, args.in_flight))
            print(f"{label:>12}: {cpu * 1000:.3f} ms CPU per request, {rate:.0f} req/s, {size} body bytes")
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
