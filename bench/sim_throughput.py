"""How many streamed 200-token answers a second one simulator core serves.

The simulator runs in a child process pinned to one core; the load generator (raw asyncio HTTP/1.1
keep-alive clients, cheaper than any client library) runs here, pinned to another core. Server CPU
comes from /proc. Usage: `python -m bench.sim_throughput [--seconds 10] [--clients 16] [--append]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson

TOKEN = "sim-heavy-unlimited-bench"
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _request(port: int, prompt: str, mode: str) -> bytes:
    body = orjson.dumps({"message": prompt, "modeId": mode, "temporary": True, "fileAttachments": []})
    head = (
        f"POST /rest/app-chat/conversations/new HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"Cookie: sso={TOKEN}; sso-rw={TOKEN}\r\nx-statsig-id: ZTpUeXBlRXJyb3I=\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one chunked (or sized) response; returns the body size."""
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
    lower = head.lower()
    if b"transfer-encoding: chunked" not in lower:
        length = int(lower.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        await reader.readexactly(length)
        return length
    total = 0
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        await reader.readexactly(size + 2)
        total += size
        if size == 0:
            return total


async def _client(port: int, payload: bytes, until: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            writer.write(payload)
            await _read_response(reader)
            counts[0] += 1
    finally:
        writer.close()


async def _load(port: int, payload: bytes, clients: int, seconds: float) -> int:
    counts = [0]
    until = time.perf_counter() + seconds
    await asyncio.gather(*(_client(port, payload, until, counts) for _ in range(clients)))
    return counts[0]


def _wait_ready(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("simulator did not start")


def measure(prompt: str, mode: str, clients: int, seconds: float) -> dict[str, float]:
    port = _free_port()
    cmd = [sys.executable, "-m", "infra.sim", "--port", str(port)]
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
        cmd = ["taskset", "-c", "0", *cmd]
        os.sched_setaffinity(0, {1})
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(port)
        payload = _request(port, prompt, mode)
        asyncio.run(_load(port, payload, clients, 1.0))  # warm-up
        cpu0, t0 = _cpu_seconds(proc.pid), time.perf_counter()
        done = asyncio.run(_load(port, payload, clients, seconds))
        elapsed, cpu = time.perf_counter() - t0, _cpu_seconds(proc.pid) - cpu0
    finally:
        proc.terminate()
        proc.wait(10)
    return {"req_s": done / elapsed, "cpu": cpu / elapsed, "per_core": done / max(cpu, 1e-9)}


SCENARIOS = (
    ("fast, 200 answer tokens", "#sim tokens=200", "fast"),
    ("expert, 50 thinking + 200 answer tokens", "#sim tokens=200 think=50", "expert"),
    ("fast, 12 answer tokens (default)", "[user]: hello", "fast"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--append", action="store_true", help="append the table to docs/benchmarks.md")
    args = parser.parse_args(argv)
    rows = []
    for label, prompt, mode in SCENARIOS:
        result = measure(prompt, mode, args.clients, args.seconds)
        rows.append(
            f"| {label} | {args.clients} | {result['req_s']:.0f} | {result['cpu'] * 100:.0f} % | {result['per_core']:.0f} |"
        )
    header = "| Scenario | Clients | Answers/s | Server CPU | Answers per CPU-second |\n|---|---|---|---|---|"
    table = header + "\n" + "\n".join(rows)
    print(table)
    if args.append:
        _append(table, args)
    return 0


def _append(table: str, args: argparse.Namespace) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    section = (
        "## Simulator throughput\n\n"
        f"`python -m bench.sim_throughput` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; simulator pinned to one core "
        f"with uvicorn + h11, {args.clients} raw keep-alive HTTP/1.1 clients on the other core, {args.seconds:.0f} s per row). "
        "Target: 400 streamed 200-token answers a second on one core.\n\n" + table + "\n\n"
        "Answers/s is what the run achieved; the single-core Python load generator is the limit there (the "
        "simulator's core is far from busy). Answers per CPU-second is what one fully busy simulator core serves. "
        "Without `delay_ms` a response goes out in one write; with it, one write per token.\n"
    )
    marker = "## Simulator throughput"
    if marker in text:
        start = text.index(marker)
        end = text.find("\n## ", start + len(marker))
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
