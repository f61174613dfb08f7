"""The released AI SDK (`ai` + `@ai-sdk/openai` + `@ai-sdk/anthropic`, pinned in tests/clients/ai_sdk):
`streamText` with a tool that runs, on chat completions, Responses and Messages, run concurrently.

`stream.mjs` executes the tool in node; its result carries the next turn's directive, so the
final text proves the result went back to the upstream in the second step."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from infra.sim.server import SimServer
from tests.clients.conftest import HERE, KEY, node, prompts, turns
from tests.fixtures.gateway import Gateway

ROUTES = ("chat", "responses", "messages")
MODEL = "grok-4.20-0309-reasoning"


@pytest.fixture(scope="module")
def runs(client_gw: Gateway, client_sim: SimServer) -> dict[str, tuple[dict[str, Any], list[str]]]:
    if not (HERE / "ai_sdk" / "node_modules" / "ai").exists():
        pytest.fail("tests/clients/ai_sdk/node_modules is missing: run `make client-deps`.")
    since = turns(client_sim)
    procs = {
        route: subprocess.Popen(
            [
                node(),
                "stream.mjs",
                route,
                client_gw.url,
                KEY,
                MODEL,
                f'Weather in City{i}? #sim think=2 tool=weather args={{"city": "City{i}"}}',
            ],
            cwd=HERE / "ai_sdk",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, route in enumerate(ROUTES)
    }
    results = {route: proc.communicate(timeout=60) for route, proc in procs.items()}
    sent = prompts(client_sim, since)
    out: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for i, (route, (stdout, stderr)) in enumerate(results.items()):
        assert procs[route].returncode == 0, f"{route}: {stderr}"
        out[route] = (json.loads(stdout.strip().splitlines()[-1]), [p for p in sent if f"City{i}?" in p])
    return out


@pytest.mark.parametrize("route", ROUTES)
def test_stream_text_with_a_tool(runs: dict[str, tuple[dict[str, Any], list[str]]], route: str) -> None:
    result, sent = runs[route]
    i = ROUTES.index(route)
    assert result["toolCalls"] == [{"name": "weather", "input": {"city": f"City{i}"}}]
    assert result["steps"] == 2 and result["finishReason"] == "stop"
    assert result["text"] == f"It-is-sunny-in-City{i}" and result["deltas"] >= 1
    first, second = sent
    assert "## weather" in first and "<tool_name>weather</tool_name>" in second
    assert f"sunny in City{i} #sim think=0" in second.rsplit("[tool result", 1)[1]
    if route == "responses":  # the reasoning item went back with the gateway's signed content
        replayed = [item for item in result["requests"][1]["input"] if item.get("type") == "reasoning"]
        assert replayed and replayed[0]["encrypted_content"].startswith("gg1.")


def test_responses_with_the_sdks_default_store(client_gw: Gateway, client_sim: SimServer) -> None:
    """Store on (the SDK's default): the second step sends the first step's output back as
    `item_reference`s, which the gateway resolves from its stored responses."""
    since = turns(client_sim)
    done = subprocess.run(
        [
            node(),
            "stream.mjs",
            "responses",
            client_gw.url,
            KEY,
            MODEL,
            'Weather in Storeville? #sim think=2 tool=weather args={"city": "Storeville"}',
            "stored",
        ],
        cwd=HERE / "ai_sdk",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["text"] == "It-is-sunny-in-Storeville" and result["steps"] == 2
    references = [i for i in result["requests"][1]["input"] if i.get("type") == "item_reference"]
    assert references, result["requests"][1]["input"]
    first, second = [p for p in prompts(client_sim, since) if "Storeville?" in p]
    assert "## weather" in first
    assert "<tool_name>weather</tool_name>" in second  # the referenced call reached the upstream
