"""Two gateway trees side by side on spaced-token streams: one simulator, legs interleaved.

On a shared machine one run's absolute figures drift by tens of percent within a minute; a
before/after comparison is only worth something when both gateways run in the same minutes
against the same simulator. Each tree's gateway is served as `bench.chat_bench` serves it (pinned
to core 0, uvicorn, SQLite store); the simulator (`--defences`) and the load generator share
core 1; the legs of the two gateways alternate, and each leg's figure is the gateway's CPU (from
/proc) per 200-token stream.

Usage: `python -m bench.spaced_ab BEFORE_TREE AFTER_TREE [--rounds 3] [--seconds 4]
[--env-a/--env-b NAME=VALUE ...] [--only SCENARIO] [--profile a|b]` (a tree is a checkout with its code; the
simulator and this load generator come from this checkout).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.chat_bench import ROOT, Target, free_port, run_load, start_gateway, wait_port

SCENARIOS = (("per_frame", 0, 16), ("delay_ms=1", 1, 16), ("delay_ms=20", 20, 64))


def times(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


SYS: dict[int, list[float]] = {}  # pid -> the kernel part of each leg, ms per stream


def leg(port: int, pid: int, spacing: int, clients: int, seconds: float) -> float:
    user, system = times(pid)
    g = asyncio.run(run_load(Target(port, True, spacing), 200, clients, seconds, None))
    if g["errors"]:
        raise RuntimeError(f"{int(g['errors'])} errors in a leg")
    user2, system2 = times(pid)
    SYS.setdefault(pid, []).append((system2 - system) / g["done"] * 1000)
    return (user2 - user + system2 - system) / g["done"] * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--env-a", action="append", default=[], help="NAME=VALUE for the first gateway")
    parser.add_argument("--env-b", action="append", default=[], help="NAME=VALUE for the second gateway")
    parser.add_argument("--only", help="one scenario: per_frame, delay_ms=1 or delay_ms=20")
    parser.add_argument("--profile", choices=("a", "b"), help="py-spy one gateway on the 1 ms leg")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    sim_port = free_port()
    sim = subprocess.Popen(
        ["taskset", "-c", "1", sys.executable, "-m", "infra.sim", "--port", str(sim_port), "--defences"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    extra_a = dict(item.split("=", 1) for item in args.env_a)
    extra_b = dict(item.split("=", 1) for item in args.env_b)
    gateways = [start_gateway(sim_port, args.before, extra_a), start_gateway(sim_port, args.after, extra_b)]
    try:
        wait_port(sim_port, sim)
        for proc, port in gateways:
            wait_port(port, proc)
            asyncio.run(run_load(Target(port, True), 5, 1, None, 20))  # warm the session and store
        scenarios = [s for s in SCENARIOS if args.only in (None, s[0])]
        if args.profile:
            proc, port = gateways[0 if args.profile == "a" else 1]
            out = Path(tempfile.mkdtemp()) / "profile.txt"
            spy = [str(Path(sys.executable).parent / "py-spy"), "record", "-r", "200", "-d", "10"]
            spy += ["-f", "raw", "-o", str(out), "-p", "{pid}"]
            command = os.environ.get("RECORD", " ".join(spy)).replace("{pid}", str(proc.pid))
            recorder = subprocess.Popen(
                command.replace("{out}", str(out)),
                shell=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            before = sum(times(proc.pid))
            spacing, clients = (int(x) for x in os.environ.get("PROFILE_LEG", "1,16").split(","))
            g = asyncio.run(run_load(Target(port, True, spacing), 200, clients, 11, None))
            spent = sum(times(proc.pid)) - before
            print(f"profiled leg: {g['done']} streams, {spent / g['done'] * 1000:.2f} ms CPU per stream")
            recorder.wait(30)
            print(f"profile: {out}")
            return 0
        for name, spacing, clients in scenarios:
            seconds = max(args.seconds, 8.0) if spacing >= 20 else args.seconds
            figures: list[list[float]] = [[], []]
            for _ in range(args.rounds):
                for i, (proc, port) in enumerate(gateways):
                    figures[i].append(leg(port, proc.pid, spacing, clients, seconds))
            a, b = (" / ".join(f"{x:.2f}" for x in f) for f in figures)
            ma, mb = (statistics.median(f) for f in figures)
            ka, kb = (statistics.median(SYS.pop(proc.pid)) for proc, _ in gateways)
            print(
                f"{name:12} c={clients:<3} A {a}  (median {ma:.2f} ms, kernel {ka:.2f})   "
                f"B {b}  (median {mb:.2f} ms, kernel {kb:.2f})   B/A {mb / ma:.2f}   "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    finally:
        for proc, _ in gateways:
            proc.terminate()
            proc.wait(10)
        sim.terminate()
        sim.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
