"""CPU of `core.protocol.frames.FrameDecoder` per stream, fed the way the gateway feeds it.

Bodies are simulator answers built in-process (infra/sim: F1, F2, the token lines, F12, F13,
F11), each with its own ids and words. Each stream gets a fresh decoder and is fed either as one
chunk (what the upstream transport hands over when the whole answer arrived in one wake-up) or in
16 KB chunks, or one line per chunk (an upstream that spaces its tokens); the streams are cycled. Reported: median `time.process_time()` per stream over
several runs. Single process, short. Usage: `python -m bench.decoder_bench [--tokens 200]`.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from core.events import Event
from core.protocol.frames import FrameDecoder
from infra.sim import frames
from infra.sim.chat import render
from infra.sim.script import build


def body(n: int, tokens: int, mode: str = "fast") -> bytes:
    message = f"Tell me about tides, take {n}. #sim tokens={tokens}"
    script = build(message, mode)
    user_rid, rid = str(uuid.uuid4()), str(uuid.uuid4())
    lines = [frames.conversation(str(uuid.uuid4()), True), frames.user_response(user_rid, message, [])]
    lines += render(script, rid)[0]
    lines += [
        frames.soft_stop(rid),
        frames.final_metadata(),
        frames.model_response(rid, user_rid, script.answer),
    ]
    return b"".join(lines)


def decode(chunks: list[bytes]) -> list[Event]:
    decoder = FrameDecoder()
    out: list[Event] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    out += decoder.flush()
    return out


def measure(streams: list[list[bytes]], rounds: int, runs: int) -> float:
    results = []
    for _ in range(runs):
        start = time.process_time()
        for _ in range(rounds):
            for chunks in streams:
                decode(chunks)
        results.append((time.process_time() - start) / (rounds * len(streams)) * 1e6)
    return statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--bodies", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--mode", default="fast")
    args = parser.parse_args()
    bodies = [body(n, args.tokens, args.mode) for n in range(args.bodies)]
    size = sum(map(len, bodies)) // len(bodies)
    whole = [[b] for b in bodies]
    split = [[b[i : i + 16384] for i in range(0, len(b), 16384)] for b in bodies]
    per_line = [b.splitlines(keepends=True) for b in bodies]  # a spaced upstream: one frame a read
    for name, streams in (("one chunk", whole), ("16 KB chunks", split), ("one line per chunk", per_line)):
        measure(streams, 2, 1)  # warm up
        print(f"{name}: {measure(streams, args.rounds, args.runs):.1f} us per stream ({size} bytes)")


if __name__ == "__main__":
    main()
