"""/v1/messages end to end: the official `anthropic` SDK -> the gateway -> the simulator, on loopback.

`messages.stream()` runs the SDK's accumulator over every event; `get_final_message()` is the
strictest reader of our stream.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from core.catalog import Tier
from infra.sim.script import expected_answer
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, start_gateway

MODEL = "grok-4.20-0309-reasoning"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "The weather in a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
CALL = '#sim tool=get_weather args={"city": "Paris"} tokens=4 think=3'
THINK: Any = {"type": "enabled", "budget_tokens": 1024}
KEY = "sk-test-key"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, SimServer]]:
    sim = SimServer().start()
    env = {
        "GROKGATE_UPSTREAM_URL": sim.url,
        "GROKGATE_ASSETS_URL": sim.url,
        "GROKGATE_RETRY_BUDGET": "0",
        "GROKGATE_API_KEYS": KEY,
    }
    tmp: Path = tmp_path_factory.mktemp("messages")
    gateway = start_gateway(env, tmp, [("sim-super-unlimited-m1", Tier.SUPER)])
    yield gateway, sim
    gateway.stop()
    sim.stop()


@pytest.fixture(scope="module")
def client(gw: tuple[Gateway, SimServer]) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gw[0].url, api_key=KEY, max_retries=0, timeout=30) as sdk:
        yield sdk


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def test_create_with_thinking(client: anthropic.Anthropic) -> None:
    m = client.messages.create(
        model=MODEL,
        max_tokens=2048,
        thinking=THINK,
        system="Be brief.",
        messages=user("Hi #sim tokens=6 think=3"),
    )
    assert [b.type for b in m.content] == ["thinking", "text"]
    assert m.content[0].signature  # type: ignore[union-attr]
    assert len(m.content[1].text.split()) == 6  # type: ignore[union-attr]
    assert m.stop_reason == "end_turn" and m.id.startswith("msg_")
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0


def test_thinking_is_off_unless_asked(client: anthropic.Anthropic) -> None:
    m = client.messages.create(model=MODEL, max_tokens=100, messages=user("Hi #sim tokens=3 think=3"))
    assert [b.type for b in m.content] == ["text"]


def test_stream_helper_accumulates(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=MODEL, max_tokens=2048, thinking=THINK, messages=user("Hi #sim tokens=5 think=4")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.content[-1].text == text  # type: ignore[union-attr]
    assert final.content[0].type == "thinking" and final.stop_reason == "end_turn"


def test_tool_use_round_trip(client: anthropic.Anthropic) -> None:
    question = f"Weather in Paris? {CALL}"
    with client.messages.stream(
        model=MODEL, max_tokens=2048, thinking=THINK, tools=TOOLS, messages=user(question)
    ) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    assert [b.type for b in first.content] == ["thinking", "text", "tool_use"]
    use = first.content[-1]
    assert use.type == "tool_use" and use.id.startswith("toolu_") and use.input == {"city": "Paris"}
    second = client.messages.create(
        model=MODEL,
        max_tokens=2048,
        tools=TOOLS,
        messages=[
            {"role": "user", "content": question},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": use.id, "content": "Sunny, 21C."},
                    {"type": "text", "text": "Thanks! #sim tokens=7 think=0"},
                ],
            },
        ],
    )
    assert second.stop_reason == "end_turn" and [b.type for b in second.content] == ["text"]
    assert len(second.content[0].text.split()) == 7  # type: ignore[union-attr]


def test_history_reaches_the_upstream_in_order(
    client: anthropic.Anthropic, gw: tuple[Gateway, SimServer]
) -> None:
    client.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=TOOLS,
        system=[{"type": "text", "text": "SYSTEM-TEXT", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": "Q1"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_01a", "name": "get_weather", "input": {"city": "X"}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01a", "content": "boom", "is_error": True},
                    {"type": "text", "text": "Q2 #sim tokens=2"},
                ],
            },
        ],
    )
    message = gw[1].log.last_chat().message
    order = [
        "[system]: SYSTEM-TEXT",
        "[system]: # Tools",
        "[user]: Q1",
        '[assistant]: <tool_calls><tool_call><tool_name>get_weather</tool_name><parameters>{"city":"X"}',
        "[tool error for toolu_01a (get_weather)]: boom",
        "[user]: Q2",
    ]
    positions = [message.index(part) for part in order]
    assert positions == sorted(positions)


def test_image_and_pdf_blocks_are_attached(
    client: anthropic.Anthropic, gw: tuple[Gateway, SimServer]
) -> None:
    m = client.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": base64.b64encode(PNG).decode(),
                        },
                    },
                    {
                        "type": "document",
                        "source": {
                            "type": "base64",
                            "media_type": "application/pdf",
                            "data": base64.b64encode(PDF).decode(),
                        },
                    },
                    {"type": "text", "text": "Describe #sim tokens=3"},
                ],
            }
        ],
    )
    assert m.stop_reason == "end_turn"
    assert len(gw[1].log.last_chat().file_ids) == 2


def test_stop_sequences_and_max_tokens(client: anthropic.Anthropic) -> None:
    prompt = "Hi #sim tokens=20 think=0"
    _, answer = expected_answer(prompt, "expert")
    word = answer.split()[5]
    m = client.messages.create(model=MODEL, max_tokens=500, stop_sequences=[word], messages=user(prompt))
    assert m.stop_reason == "stop_sequence" and m.stop_sequence == word
    assert word not in m.content[0].text  # type: ignore[union-attr]
    with client.messages.stream(
        model=MODEL, max_tokens=500, stop_sequences=[word], messages=user(prompt)
    ) as s:
        assert s.get_final_message().stop_reason == "stop_sequence"
    short = client.messages.create(model=MODEL, max_tokens=3, messages=user(prompt))
    assert short.stop_reason == "max_tokens"


def test_tool_choice_none_leaves_markup_as_text(client: anthropic.Anthropic) -> None:
    m = client.messages.create(
        model=MODEL, max_tokens=500, tools=TOOLS, tool_choice={"type": "none"}, messages=user(f"x {CALL}")
    )
    assert m.stop_reason == "end_turn" and "<tool_calls>" in m.content[0].text  # type: ignore[union-attr]


def test_count_tokens(client: anthropic.Anthropic) -> None:
    small = client.messages.count_tokens(model=MODEL, messages=user("hello"))
    big = client.messages.count_tokens(model=MODEL, messages=user("hello"), tools=TOOLS, system="rules " * 50)
    assert 0 < small.input_tokens < big.input_tokens


def test_midstream_failure_is_an_error_event(client: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.APIStatusError),
        client.messages.stream(
            model=MODEL, max_tokens=500, messages=user("Hi #sim tokens=40 midstream_drop=10")
        ) as s,
    ):
        s.get_final_message()


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        ({"model": MODEL, "messages": user("hi")}, 400, "invalid_request_error"),  # max_tokens missing
        ({"model": "claude-nope", "max_tokens": 5, "messages": user("hi")}, 404, "not_found_error"),
        (
            {"model": MODEL, "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
            400,
            "invalid_request_error",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 5,
                "messages": user("hi"),
                "thinking": {"type": "enabled", "budget_tokens": 100},
            },
            400,
            "invalid_request_error",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 5,
                "messages": user("hi"),
                "tools": [{"name": "</tool_name><evil>", "input_schema": {"type": "object"}}],
            },
            400,
            "invalid_request_error",
        ),
    ],
)
def test_errors_use_anthropics_envelope(
    gw: tuple[Gateway, SimServer], body: Any, status: int, kind: str
) -> None:
    response = httpx.post(gw[0].url + "/v1/messages", json=body, headers={"x-api-key": KEY}, timeout=30)
    assert response.status_code == status
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == kind and error["error"]["message"]


def test_wrong_key_is_an_authentication_error(gw: tuple[Gateway, SimServer]) -> None:
    with (
        anthropic.Anthropic(base_url=gw[0].url, api_key="wrong", max_retries=0) as bad,
        pytest.raises(anthropic.AuthenticationError) as info,
    ):
        bad.messages.create(model=MODEL, max_tokens=5, messages=user("hi"))
    assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
