"""Soak: bounded mixed traffic against the gateway and the simulator, with resource figures over time.

The gateway runs as `grokgate serve` serves it (the chat bench's child: uvicorn, httptools, uvloop,
SQLite store, 256 unlimited accounts); the simulator is a child too. `--workers` clients loop over
a fixed mix: streamed chat, tool calls, non-streamed chat, image generations, clients that go away
after the first chunk, and upstream faults (a mid-stream drop, an in-band stream error). Every
`--every` seconds (at most `--rate` requests per second in all, so the pool's quota lasts) a row: the gateway's RSS, its open file descriptors, the leases in flight
(from the store), requests done and failed in that period. Flat columns mean no leak.

Usage: `python -m bench.soak [--seconds 600] [--every 30] [--workers 8] [--rate 40] [--no-write]`.
It is a benchmark, not a test: run it on a quiet machine; the table goes to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.chat_bench import ROOT, free_port, rss_mb, wait_port
from bench.doc import write_section

MODEL = "grok-4.20-0309-non-reasoning-heavy"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
TOOL_DIRECTIVE = '#sim tool=get_weather args={"city": "Paris"} tool_format=xml tokens=3 think=0'


def chat_body(prompt: str, stream: bool, tools: bool = False) -> dict[str, object]:
    body: dict[str, object] = {
        "model": MODEL,
        "stream": stream,
        "messages": [{"role": "user", "content": prompt}],
    }
    if tools:
        body["tools"] = TOOLS
    return body


class Counters:
    def __init__(self, rate: float) -> None:
        self.done = 0
        self.failed = 0
        self.kinds: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.interval = 1.0 / rate
        self.next_slot = time.monotonic()

    async def pace(self) -> None:
        """At most `rate` requests per second in all: the pool's quota lasts the whole run."""
        now = time.monotonic()
        slot = max(self.next_slot, now)
        self.next_slot = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


async def one(client: httpx.AsyncClient, kind: str, counters: Counters) -> None:
    ok = True
    try:
        if kind == "stream":
            async with client.stream(
                "POST", "/v1/chat/completions", json=chat_body("Tides? #sim tokens=60 think=0", True)
            ) as r:
                ok = r.status_code == 200 and (b"".join([c async for c in r.aiter_raw()])).rstrip().endswith(
                    b"[DONE]"
                )
        elif kind == "tools":
            r = await client.post(
                "/v1/chat/completions", json=chat_body(f"Weather? {TOOL_DIRECTIVE}", False, True)
            )
            ok = r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "tool_calls"
        elif kind == "json":
            r = await client.post("/v1/chat/completions", json=chat_body("Hi #sim tokens=20 think=2", False))
            ok = r.status_code == 200
        elif kind == "image":
            r = await client.post(
                "/v1/images/generations",
                json={"model": "grok-imagine-image", "prompt": "a lighthouse", "n": 1},
            )
            ok = r.status_code == 200 and bool(r.json()["data"])
        elif kind == "disconnect":
            async with client.stream(
                "POST", "/v1/chat/completions", json=chat_body("Long #sim tokens=400 delay_ms=5", True)
            ) as r:
                async for _ in r.aiter_raw():
                    break  # the client goes away after the first chunk
        elif kind == "drop":
            async with client.stream(
                "POST", "/v1/chat/completions", json=chat_body("Hi #sim tokens=30 midstream_drop=10", True)
            ) as r:
                body = b"".join([c async for c in r.aiter_raw()])
                ok = r.status_code == 200 and b'"error"' in body  # the terminal error, not silence
        elif kind == "stream_error":
            r = await client.post(
                "/v1/chat/completions", json=chat_body("Hi #sim tokens=5 stream_error", False)
            )
            ok = r.status_code in (200, 502)
    except httpx.HTTPError:
        ok = kind == "disconnect"
    counters.done += 1
    counters.failed += not ok
    counters.kinds[kind] = counters.kinds.get(kind, 0) + 1
    if not ok:
        counters.failures[kind] = counters.failures.get(kind, 0) + 1


MIX = ["stream", "stream", "stream", "tools", "json", "image", "disconnect", "drop", "stream_error"]


async def worker(n: int, url: str, stop: float, counters: Counters) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        i = n
        while time.monotonic() < stop:
            await counters.pace()
            await one(client, MIX[i % len(MIX)], counters)
            i += 1


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def leases_in_flight(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return int(conn.execute("SELECT COALESCE(SUM(in_flight), 0) FROM accounts").fetchone()[0])


async def soak(
    url: str, pid: int, db: Path, seconds: float, every: float, workers: int, rate: float
) -> list[str]:
    counters = Counters(rate)
    start = time.monotonic()
    stop = start + seconds
    tasks = [asyncio.ensure_future(worker(n, url, stop, counters)) for n in range(workers)]
    rows = [
        "| t (s) | RSS (MB) | open fds | leases in flight | requests | failed |",
        "|---|---|---|---|---|---|",
    ]
    last_done = last_failed = 0

    def row(t: float) -> None:
        nonlocal last_done, last_failed
        rows.append(
            f"| {t:.0f} | {rss_mb(pid):.1f} | {open_fds(pid)} | {leases_in_flight(db)} | "
            f"{counters.done - last_done} | {counters.failed - last_failed} |"
        )
        last_done, last_failed = counters.done, counters.failed
        print(rows[-1], flush=True)

    row(0)
    next_at = start + every
    while time.monotonic() < stop:
        await asyncio.sleep(max(0.0, min(next_at, stop) - time.monotonic()))
        if time.monotonic() >= next_at:
            row(time.monotonic() - start)
            next_at += every
    await asyncio.gather(*tasks)
    await asyncio.sleep(2)  # the last releases
    row(time.monotonic() - start)
    rows.append("")
    rows.append(f"Requests per kind: {', '.join(f'{k} {v}' for k, v in sorted(counters.kinds.items()))}.")
    if counters.failures:
        rows.append(
            f"Failures per kind: {', '.join(f'{k} {v}' for k, v in sorted(counters.failures.items()))}."
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--every", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second at most, in all")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    sim_port, gw_port = free_port(), free_port()
    tmp = Path(tempfile.mkdtemp())
    sim = subprocess.Popen(
        [sys.executable, "-m", "infra.sim", "--port", str(sim_port)], cwd=ROOT, stdout=subprocess.DEVNULL
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GROKGATE_")},
        "GROKGATE_UPSTREAM_URL": f"http://127.0.0.1:{sim_port}",
        "GROKGATE_ASSETS_URL": f"http://127.0.0.1:{sim_port}",
        "GROKGATE_STORE": f"sqlite:///{tmp}/soak.db",
        "GROKGATE_MEDIA": str(tmp / "media"),
        "GROKGATE_LOG_LEVEL": "ERROR",
        "GROKGATE_RETRY_BUDGET": "0",
    }
    gw = subprocess.Popen(
        [sys.executable, "-m", "bench.chat_bench", "--serve-gateway", str(gw_port)], cwd=ROOT, env=env
    )
    try:
        wait_port(sim_port, sim)
        wait_port(gw_port, gw)
        rows = asyncio.run(
            soak(
                f"http://127.0.0.1:{gw_port}",
                gw.pid,
                tmp / "soak.db",
                args.seconds,
                args.every,
                args.workers,
                args.rate,
            )
        )
    finally:
        for proc in (gw, sim):
            proc.terminate()
            proc.wait(10)
    table = "\n".join(rows)
    load = f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    print(f"load average (1 min): {load}")
    if not args.no_write:
        write_doc(table, args, load)
    return 0


def write_doc(table: str, args: argparse.Namespace, load: str) -> None:
    write_section(
        "Soak",
        "## Soak\n\n"
        f"`python -m bench.soak --seconds {args.seconds:.0f} --every {args.every:.0f} --workers {args.workers} "
        f"--rate {args.rate:g}` "
        f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Python {sys.version.split()[0]}): the gateway "
        "as `grokgate serve` serves it over SQLite, in front of the simulator; a fixed mix of streamed chat, "
        "tool calls, JSON chat, image generations, clients gone after the first chunk, mid-stream drops and "
        f"in-band stream errors. A row per period (requests and failures in that period). Load average: {load}.\n\n"
        + table,
    )


if __name__ == "__main__":
    sys.exit(main())
