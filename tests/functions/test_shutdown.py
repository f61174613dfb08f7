"""Graceful shutdown of a real `grokgate serve` process on SIGTERM (issue 18, deliverable 4).

Three streams are in flight when the signal comes: a short one finishes normally within the grace
(`GROKGATE_SHUTDOWN_GRACE`), a long one and one still opening after its early byte are ended with
the dialect's terminal error past it; the
listening socket closes at once; the process exits (uvicorn re-raises the signal once done) and no lease is left in flight.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from core.accounts import NewAccount
from core.catalog import Tier
from infra.sim.server import SimServer

MODEL = "grok-4.20-0309-non-reasoning"
BOUND = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stream(threading.Thread):
    """One streamed chat completion read to its end in a thread."""

    def __init__(self, url: str, prompt: str) -> None:
        super().__init__(daemon=True)
        self.url, self.prompt = url, prompt
        self.started = threading.Event()
        self.events: list[bytes] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": self.prompt}]}
        try:
            with httpx.stream("POST", self.url + "/v1/chat/completions", json=body, timeout=BOUND) as r:
                for line in r.iter_lines():
                    if line:
                        self.started.set()  # a first event, or the early comment
                    if line.startswith("data: "):
                        self.events.append(line[6:].encode())
        except BaseException as exc:
            self.error = exc
        finally:
            self.started.set()


@pytest.fixture
def served(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    sim = SimServer().start()
    db = tmp_path / "pool.db"

    async def seed() -> None:
        from infra.state.sqlite import SQLiteAccountStore

        store = SQLiteAccountStore(str(db))
        await store.add([NewAccount(f"sim-super-unlimited-sd{i}", Tier.SUPER) for i in range(3)], time.time())
        await store.aclose()

    asyncio.run(seed())
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GROKGATE_")},
        "GROKGATE_STORE": f"sqlite:///{db}",
        "GROKGATE_MEDIA": str(tmp_path / "media"),
        "GROKGATE_UPSTREAM_URL": sim.url,
        "GROKGATE_ASSETS_URL": sim.url,
        "GROKGATE_RETRY_BUDGET": "0",
        "GROKGATE_SHUTDOWN_GRACE": "2",
        "GROKGATE_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "functions.cli", "serve", "--port", str(port)], cwd=tmp_path, env=env
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + BOUND
    while True:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            sim.stop()
            pytest.fail("grokgate serve did not start")
        time.sleep(0.1)
    yield proc, url, db
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    sim.stop()


def test_sigterm_lets_short_streams_finish_and_ends_long_ones_with_the_terminal_error(
    served: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    proc, url, db = served
    short = Stream(url, "Hi #sim tokens=20 delay_ms=50 think=0")  # ~1 s: inside the grace
    long = Stream(url, "Hi #sim tokens=1000 delay_ms=50 think=0")  # ~50 s: past it
    slow = Stream(url, "Hi #sim tokens=3 think=0 ttfb_ms=40000")  # still opening after its early byte
    for stream in (short, long, slow):
        stream.start()
        assert stream.started.wait(BOUND) and stream.error is None
    proc.send_signal(signal.SIGTERM)

    refused = False  # the listening socket closes at once, while the long stream still runs
    deadline = time.monotonic() + BOUND
    while not refused and time.monotonic() < deadline and long.is_alive():
        try:
            socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=2).close()
            time.sleep(0.05)
        except OSError:
            refused = True
    for stream in (short, long, slow):
        stream.join(BOUND)
        assert not stream.is_alive() and stream.error is None, stream.error
    assert proc.wait(BOUND) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it is done
    assert refused

    assert short.events[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in short.events[:-1]]
    assert not any("error" in c for c in chunks)
    assert any(c["choices"] and c["choices"][0].get("finish_reason") == "stop" for c in chunks)

    assert long.events[-1] == b"[DONE]"
    error = orjson.loads(long.events[-2])
    assert error["error"]["code"] == "shutting_down", error

    async def in_flight() -> list[int]:
        from infra.state.sqlite import SQLiteAccountStore

        store = SQLiteAccountStore(str(db))
        try:
            return [a.in_flight for a in (await store.list()).items]
        finally:
            await store.aclose()

    assert slow.events[-1] == b"[DONE]"
    assert orjson.loads(slow.events[-2])["error"]["code"] == "shutting_down"

    assert asyncio.run(in_flight()) == [0, 0, 0]
