"""A first byte before the first event (issue 18, row 10): a streamed answer slow to start gets
its headers and an SSE comment after `first_byte_seconds`; a failure to start after that is the
dialect's terminal error event, and the lease is released either way."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from core.catalog import Tier
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, start_gateway

MODEL = "grok-4.20-0309-non-reasoning"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    sim = SimServer().start()
    env = {
        "GROKGATE_UPSTREAM_URL": sim.url,
        "GROKGATE_ASSETS_URL": sim.url,
        "GROKGATE_RETRY_BUDGET": "0",
        "GROKGATE_FIRST_BYTE_SECONDS": "0.2",
    }
    gateway = start_gateway(
        env, tmp_path_factory.mktemp("fb"), [(f"sim-super-unlimited-fb{i}", Tier.SUPER) for i in range(6)]
    )
    yield gateway
    gateway.stop()
    sim.stop()


def body(path: str, prompt: str) -> dict[str, Any]:
    if path == "/v1/responses":
        return {"model": MODEL, "stream": True, "input": prompt}
    extra = {"max_tokens": 100} if path == "/v1/messages" else {}
    return {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": prompt}], **extra}


def stream(gw: Gateway, path: str, prompt: str) -> tuple[int, list[bytes]]:
    with httpx.stream("POST", gw.url + path, json=body(path, prompt), timeout=30) as r:
        return r.status_code, list(r.iter_raw())


def no_lease_in_flight(gw: Gateway) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        page = gw.call(gw.deps.store.list(limit=10))
        if all(a.in_flight == 0 for a in page.items):
            return True
        time.sleep(0.05)
    return False


PATHS = ["/v1/chat/completions", "/v1/responses", "/v1/messages"]


@pytest.mark.parametrize("path", PATHS)
def test_a_slow_start_sends_a_comment_first_then_the_answer(gw: Gateway, path: str) -> None:
    status, chunks = stream(gw, path, "Hi #sim tokens=3 think=0 ttfb_ms=1500")
    assert status == 200
    raw = b"".join(chunks)
    assert raw.startswith(b": waiting for the upstream\n\n")
    assert chunks[0].startswith(b": ")  # the comment went out on its own, before the answer
    tail = raw.rstrip()
    assert tail.endswith(b"[DONE]") or b"message_stop" in tail or b"response.completed" in tail
    assert no_lease_in_flight(gw)


@pytest.mark.parametrize("path", PATHS)
def test_a_fast_start_is_unchanged(gw: Gateway, path: str) -> None:
    status, chunks = stream(gw, path, "Hi #sim tokens=3 think=0")
    assert status == 200 and not b"".join(chunks).startswith(b": waiting")


@pytest.mark.parametrize("path", PATHS)
def test_a_failure_after_the_early_byte_is_the_dialects_terminal_error(gw: Gateway, path: str) -> None:
    status, chunks = stream(gw, path, "Hi #sim usage_limit ttfb_ms=1500")
    raw = b"".join(chunks)
    assert status == 200 and raw.startswith(b": waiting")
    if path == "/v1/messages":
        assert b"event: error" in raw and b"rate_limit_error" in raw
    elif path == "/v1/responses":
        assert b"response.failed" in raw or b"event: error" in raw
    else:
        assert b'"error"' in raw and raw.rstrip().endswith(b"[DONE]")
    assert no_lease_in_flight(gw)


def test_a_fast_failure_is_still_a_proper_http_error(gw: Gateway) -> None:
    status, _chunks = stream(gw, "/v1/chat/completions", "Hi #sim usage_limit")
    assert status == 429
