"""Stored responses benchmark: what `store` (on by default) adds to a Responses call, per store.

    python -m bench.responses_bench [--ops 200] [--stores sqlite,redis-tcp,...] [--no-write]

For each store (on loopback, started here: SQLite on a temporary file, redis-server, the Upstash
REST shim in front of it, moto's DynamoDB server) it times `put` (what a finished response costs
before its terminal event goes out), `get` (what `previous_response_id` costs before the upstream
call) and `delete`, for a small response (a short turn, ~1 KB of JSON) and a large one (a long
conversation of 2,400 turns, ~1 MB of JSON, ~460 KB packed: two DynamoDB items). The table goes to docs/benchmarks.md under
`## Stored responses`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
import uuid
from dataclasses import replace
from typing import Any

from bench.store_bench import write_section
from core.ports import StoredResponse
from infra.state.factory import responses_for
from infra.state.response_codec import pack
from tests.fixtures.stores import STORE_KINDS, StoreServers, open_store

SECTION = "## Stored responses"


def sample(size: str) -> StoredResponse:
    turns = 3 if size == "small" else 2400
    context = [
        {
            "id": f"msg_{n}",
            "type": "message",
            "role": "user" if n % 2 else "assistant",
            "content": [{"type": "input_text", "text": f"turn {n}: " + os.urandom(160).hex()}],
        }
        for n in range(turns)
    ]
    now = time.time()
    return StoredResponse(
        id="",
        owner="key:" + "0" * 64,
        created_at=now,
        expires_at=now + 3600,
        response={"id": "", "object": "response", "status": "completed", "output": context[-1:]},
        input_items=context[-1:],
        context=context[:-1],
    )


async def bench_one(servers: StoreServers, kind: str, size: str, ops: int) -> dict[str, Any]:
    account_store = open_store(servers.spec(kind))
    store = responses_for(account_store)
    base = sample(size)
    times: dict[str, list[float]] = {"put": [], "get": [], "delete": []}
    try:
        for _ in range(ops):
            rid = "resp_" + uuid.uuid4().hex
            item = replace(base, id=rid)
            for op in ("put", "get", "delete"):
                start = time.perf_counter()
                if op == "put":
                    await store.put(item)
                elif op == "get":
                    assert await store.get(rid, owner=item.owner, now=time.time()) is not None
                else:
                    assert await store.delete(rid, owner=item.owner, now=time.time())
                times[op].append((time.perf_counter() - start) * 1000)
    finally:
        await store.aclose()
        await account_store.aclose()
    row: dict[str, Any] = {"store": kind, "size": size, "bytes": len(pack(base)), "n": ops}
    for op, values in times.items():
        row[op] = statistics.median(values)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        SECTION,
        "",
        f"`python -m bench.responses_bench`, on this machine ({platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} when measured), every store "
        "on loopback. Median milliseconds of one call; "
        "*packed* is the zlib-compressed JSON the store keeps (the sample's text is random hex: about 2:1; "
        "prose compresses better).",
        "A finished response waits for one `put` before its terminal event goes out; `previous_response_id` "
        "costs one `get` before the upstream call. Past 64 KB the compression runs on a worker thread, "
        "so a large put or get does not hold up the streams on the same event loop.",
        "",
        "| store | response | packed (KB) | calls | put (ms) | get (ms) | delete (ms) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['store']} | {r['size']} | {r['bytes'] / 1024:.0f} | {r['n']} | {r['put']:.2f} | "
            f"{r['get']:.2f} | {r['delete']:.2f} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    servers = StoreServers()
    rows = []
    try:
        for kind in args.stores:
            for size in ("small", "large"):
                ops = args.ops if size == "small" else max(5, args.ops // 10)
                rows.append(await bench_one(servers, kind, size, ops))
                print(rows[-1], flush=True)
    finally:
        servers.stop()
    body = table(rows)
    print(body)
    if not args.no_write:
        write_section(body, SECTION)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--stores", type=lambda s: s.split(","), default=list(STORE_KINDS))
    parser.add_argument("--no-write", action="store_true")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
