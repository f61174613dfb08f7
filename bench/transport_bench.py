"""The two upstream chat transports side by side: REST (NDJSON) and the gateway WebSocket.

One simulator (pinned to core 1) and two gateways (`GROKGATE_CHAT_TRANSPORT=rest` and `=ws`,
each pinned to core 0, measured one after the other in alternating rounds); the load generator of
`bench.chat_bench` on core 1. Reported per transport: added TTFB at c=1 (against the simulator's
own REST TTFB), and gateway CPU per 200-token stream at c=16 with the upstream writing every
token on its own 1 ms apart (as grok.com spaces them) and with no pause. A socket turn costs a
handshake and two more messages before its first token, so its TTFB is expected to be higher.

Usage: `python -m bench.transport_bench [--seconds 4] [--no-write]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

from bench.chat_bench import (
    ROOT,
    Target,
    _load,
    cpu_seconds,
    free_port,
    run_load,
    start_gateway,
    wait_port,
    write_section,
)

ROUNDS = 3


def measure(sim_port: int, gateways: dict[str, tuple[int, int]], seconds: float) -> list[tuple[str, ...]]:
    run = asyncio.run
    direct = Target(sim_port, False)
    for _, port in gateways.values():
        run(run_load(Target(port, True), 5, 1, None, 20))  # warm sessions, store and user ids
    ttfb: dict[str, list[float]] = {t: [] for t in gateways}
    ttfb99: dict[str, list[float]] = {t: [] for t in gateways}
    cpu: dict[tuple[str, int], list[float]] = {}
    errors = dict.fromkeys(gateways, 0)
    for _ in range(ROUNDS):
        d = run(run_load(direct, 50, 1, None, 150))
        for transport, (pid, port) in gateways.items():
            g = run(run_load(Target(port, True), 50, 1, None, 150))
            ttfb[transport].append((g["p50"] - d["p50"]) * 1000)
            ttfb99[transport].append((g["p99"] - d["p99"]) * 1000)
            errors[transport] += int(g["errors"])
            for delay in (1, 0):
                before = cpu_seconds(pid)
                g = run(run_load(Target(port, True, delay or None), 200, 16, seconds, None))
                cpu.setdefault((transport, delay), []).append(
                    (cpu_seconds(pid) - before) / max(1, g["done"]) * 1000
                )
                errors[transport] += int(g["errors"])
    rows: list[tuple[str, ...]] = []
    for transport in gateways:
        rows.append(
            (
                transport,
                f"{statistics.median(ttfb[transport]):.2f} / {statistics.median(ttfb99[transport]):.2f} ms",
                f"{statistics.median(cpu[(transport, 1)]):.2f} ms",
                f"{statistics.median(cpu[(transport, 0)]):.2f} ms",
                str(errors[transport]),
            )
        )
    return rows


def render(rows: list[tuple[str, ...]]) -> str:
    lines = [
        "| transport | added TTFB p50 / p99, c=1, 50 tokens | CPU per 200-token stream, c=16, tokens 1 ms apart | same, no pause | errors |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_doc(table: str, load: str) -> None:
    write_section(
        "Chat transports",
        f"`python -m bench.transport_bench` ({time.strftime('%Y-%m-%d')}, medians of {ROUNDS} alternating rounds): "
        "each gateway pinned to core 0 in turn, simulator and load generator on core 1, SQLite store. "
        "Added TTFB is against the simulator's own REST TTFB; a socket turn pays a WebSocket handshake "
        "and the session.create / conversation.attached exchange before its first token (the user id "
        "is cached after the first turn of an account). With no pause the REST simulator writes a whole "
        f"answer in one write, the socket one message per token. Load average (1 min): {load}.\n\n" + table,
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4.0, help="per leg")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    load_before = _load()
    sim_port = free_port()
    sim = subprocess.Popen(
        ["taskset", "-c", "1", sys.executable, "-m", "infra.sim", "--port", str(sim_port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    procs: dict[str, subprocess.Popen[bytes]] = {}
    gateways: dict[str, tuple[int, int]] = {}
    try:
        wait_port(sim_port, sim)
        for transport in ("rest", "ws"):
            proc, port = start_gateway(sim_port, env_extra={"GROKGATE_CHAT_TRANSPORT": transport})
            procs[transport] = proc
            wait_port(port, proc)
            gateways[transport] = (proc.pid, port)
        rows = measure(sim_port, gateways, args.seconds)
    finally:
        for proc in [*procs.values(), sim]:
            proc.terminate()
            proc.wait(10)
    table = render(rows)
    print(table)
    load = f"{load_before} before, {_load()} after"
    print(f"load average: {load}")
    if not args.no_write:
        write_doc(table, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
