"""Tool calling through /v1/chat/completions with the official `openai` SDK (the Responses and
Messages round trips live in their own e2e modules), and every markup the simulator can write
detected on all three surfaces."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from core.catalog import Tier
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, start_gateway

MODEL = "grok-4.20-0309"
ARGS = {"city": "São Paulo", "days": 3, "note": "line one\nline two"}
FUNCTION = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "note": {"type": "string"}},
        "required": ["city"],
    },
}
CHAT_TOOLS: list[Any] = [{"type": "function", "function": FUNCTION}]
FORMATS = ["xml", "invoke", "function_call", "json_fence"]


def directive(fmt: str = "xml", tokens: int = 3) -> str:
    return f"#sim tool=get_weather args={json.dumps(ARGS)} tool_format={fmt} tokens={tokens} think=0"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    sim = SimServer().start()
    env = {"GROKGATE_UPSTREAM_URL": sim.url, "GROKGATE_ASSETS_URL": sim.url, "GROKGATE_RETRY_BUDGET": "0"}
    tmp: Path = tmp_path_factory.mktemp("tools")
    gateway = start_gateway(env, tmp, [("sim-super-unlimited-t1", Tier.SUPER)])
    yield gateway
    gateway.stop()
    sim.stop()


@pytest.fixture(scope="module")
def oai(gw: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="test", max_retries=0, timeout=30) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def ant(gw: Gateway) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gw.url, api_key="test", max_retries=0, timeout=30) as sdk:
        yield sdk


def test_chat_tool_round_trip(oai: openai.OpenAI) -> None:
    question = f"Weather? {directive()}"
    first = oai.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": question}], tools=CHAT_TOOLS
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == ARGS
    assert (
        choice.message.content and "<tool_calls>" not in choice.message.content
    )  # the prose before the call
    second = oai.chat.completions.create(
        model=MODEL,
        tools=CHAT_TOOLS,
        messages=[
            {"role": "user", "content": question},
            choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "Sunny. #sim tokens=5 think=0"},
        ],
    )
    assert second.choices[0].finish_reason == "stop"
    assert len((second.choices[0].message.content or "").split()) == 5


def test_chat_stream_helper_accumulates_tool_calls(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(
        model=MODEL, messages=[{"role": "user", "content": f"x {directive('invoke')}"}], tools=CHAT_TOOLS
    ) as stream:
        kinds = {event.type for event in stream}
        final = stream.get_final_completion()
    assert "tool_calls.function.arguments.done" in kinds
    message = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls and json.loads(message.tool_calls[0].function.arguments) == ARGS


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_markup_on_every_surface(oai: openai.OpenAI, ant: anthropic.Anthropic, fmt: str) -> None:
    prompt = f"Weather? {directive(fmt, tokens=0)}"
    chat = oai.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": prompt}], tools=CHAT_TOOLS
    )
    calls = chat.choices[0].message.tool_calls
    assert calls and json.loads(calls[0].function.arguments) == ARGS
    assert not chat.choices[0].message.content
    flat: Any = [{"type": "function", **FUNCTION}]
    with oai.responses.stream(model=MODEL, input=prompt, tools=flat) as stream:
        response = stream.get_final_response()
    assert [i.type for i in response.output] == ["function_call"]
    assert json.loads(response.output[0].arguments) == ARGS  # type: ignore[union-attr]
    tools: Any = [{"name": "get_weather", "input_schema": FUNCTION["parameters"]}]
    with ant.messages.stream(
        model=MODEL, max_tokens=500, tools=tools, messages=[{"role": "user", "content": prompt}]
    ) as s:
        message = s.get_final_message()
    assert message.stop_reason == "tool_use" and message.content[-1].input == ARGS  # type: ignore[union-attr]


def test_unknown_tool_is_text_and_forced_choice_is_honoured(oai: openai.OpenAI) -> None:
    other: list[Any] = [{"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}}]
    chat = oai.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": f"x {directive()}"}], tools=other
    )
    assert chat.choices[0].finish_reason == "stop"
    assert "<tool_calls>" in (chat.choices[0].message.content or "")
    forced = oai.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": f"x {directive()}"}],
        tools=CHAT_TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert forced.choices[0].finish_reason == "tool_calls"


def test_parallel_tool_calls_false_keeps_one(oai: openai.OpenAI) -> None:
    chat = oai.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": f"x {directive()}"}],
        tools=CHAT_TOOLS,
        parallel_tool_calls=False,
    )
    assert len(chat.choices[0].message.tool_calls or []) == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_stream_that_breaks_mid_call_never_shows_the_markup(gw: Gateway, fmt: str) -> None:
    """Issue 18 row 7: the drop lands inside the call; the client sees the prose, then the error."""
    import httpx

    prompt = f"Weather? {directive(fmt, tokens=3)} midstream_drop=6"
    body = {
        "model": MODEL,
        "stream": True,
        "messages": [{"role": "user", "content": prompt}],
        "tools": CHAT_TOOLS,
    }
    with httpx.stream("POST", gw.url + "/v1/chat/completions", json=body, timeout=30) as r:
        assert r.status_code == 200
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    content = "".join(
        (c.get("delta") or {}).get("content") or "" for e in events for c in e.get("choices", [])
    )
    assert "<" not in content and "```" not in content and "{" not in content, content
    assert "error" in events[-1], events[-1]
