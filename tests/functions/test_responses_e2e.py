"""/v1/responses end to end: the official `openai` SDK -> the gateway -> the simulator, on loopback.

Streams are judged by the SDK itself: `responses.stream()` runs its accumulator over every event,
and `responses.create(stream=True)` parses each into its typed model.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from core.catalog import Tier
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, start_gateway

MODEL = "grok-4.20-0309-reasoning"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    }
]
CALL = '#sim tool=get_weather args={"city": "Paris"} tokens=4 think=3'


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, SimServer]]:
    sim = SimServer().start()
    env = {"GROKGATE_UPSTREAM_URL": sim.url, "GROKGATE_ASSETS_URL": sim.url, "GROKGATE_RETRY_BUDGET": "0"}
    tmp: Path = tmp_path_factory.mktemp("responses")
    gateway = start_gateway(env, tmp, [("sim-super-unlimited-r1", Tier.SUPER)])
    yield gateway, sim
    gateway.stop()
    sim.stop()


@pytest.fixture(scope="module")
def client(gw: tuple[Gateway, SimServer]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gw[0].url + "/v1", api_key="test", max_retries=0, timeout=30) as sdk:
        yield sdk


def test_non_stream_with_reasoning(client: openai.OpenAI) -> None:
    r = client.responses.create(
        model=MODEL, input="Hi #sim tokens=8 think=3", instructions="Be brief.", reasoning={"effort": "low"}
    )
    assert r.status == "completed" and r.object == "response"
    assert [item.type for item in r.output] == ["reasoning", "message"]
    assert r.output[0].summary[0].text  # type: ignore[union-attr]
    assert len(r.output_text.split()) == 8
    assert r.instructions == "Be brief." and r.store is True
    assert r.usage is not None and r.usage.output_tokens_details.reasoning_tokens > 0


def test_raw_stream_events_are_typed_and_numbered(client: openai.OpenAI) -> None:
    stream = client.responses.create(model=MODEL, input="Hi #sim tokens=6 think=2", stream=True)
    events = list(stream)
    assert events[0].type == "response.created" and events[1].type == "response.in_progress"
    assert events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert len(text.split()) == 6


def test_stream_helper_accumulates(client: openai.OpenAI) -> None:
    with client.responses.stream(model=MODEL, input="Hi #sim tokens=5 think=2") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.output_text == "".join(deltas) and final.status == "completed"


def test_sse_framing_has_event_lines_and_no_done(gw: tuple[Gateway, SimServer]) -> None:
    body = {"model": MODEL, "input": "Hi #sim tokens=3 think=0", "stream": True}
    raw = httpx.post(gw[0].url + "/v1/responses", json=body, timeout=30).text
    assert "[DONE]" not in raw
    frames = [f for f in raw.split("\n\n") if f.strip() and not f.startswith(":")]
    for frame in frames:
        event, data = frame.split("\n", 1)
        assert event.removeprefix("event: ") == json.loads(data.removeprefix("data: "))["type"]


def test_tool_round_trip(client: openai.OpenAI) -> None:
    first = client.responses.create(model=MODEL, input=f"Weather in Paris? {CALL}", tools=TOOLS)
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert call.call_id.startswith("call_")
    history: list[Any] = [
        {"role": "user", "content": f"Weather in Paris? {CALL}"},
        *[item.model_dump(exclude_none=True) for item in first.output],
        {
            "type": "function_call_output",
            "call_id": call.call_id,
            "output": "Sunny, 21C. #sim tokens=7 think=0",
        },
    ]
    with client.responses.stream(model=MODEL, input=history, tools=TOOLS) as stream:
        second = stream.get_final_response()
    assert [item.type for item in second.output] == ["message"]
    assert len(second.output_text.split()) == 7


def test_streamed_call_through_the_helper(client: openai.OpenAI) -> None:
    with client.responses.stream(model=MODEL, input=f"Weather? {CALL}", tools=TOOLS) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds and kinds[-1] == "response.completed"
    assert [item.type for item in final.output] == ["reasoning", "message", "function_call"]


def test_input_image_and_forced_tool_choice(client: openai.OpenAI, gw: tuple[Gateway, SimServer]) -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    r = client.responses.create(
        model=MODEL,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": f"What is this? {CALL}"},
                    {"type": "input_image", "image_url": url},
                ],
            }
        ],
        tools=TOOLS,
        tool_choice={"type": "function", "name": "get_weather"},
    )
    assert r.output[-1].type == "function_call"
    assert r.tool_choice.type == "function"  # type: ignore[union-attr]
    upstream = gw[1].log.last_chat()
    assert len(upstream.file_ids) == 1
    assert "MUST call the tool `get_weather`" in upstream.message


def test_required_call_gets_one_corrective_retry(
    client: openai.OpenAI, gw: tuple[Gateway, SimServer]
) -> None:
    before = len(gw[1].log.chat_turns())
    r = client.responses.create(
        model=MODEL, input="Say hi #sim tokens=4 think=0", tools=TOOLS, tool_choice="required"
    )
    chats = gw[1].log.chat_turns()[before:]
    assert len(chats) == 2
    assert "Your reply must call one of the tools" in chats[1].message
    assert r.status == "completed" and len(r.output_text.split()) == 4  # the second answer stands


def test_max_output_tokens_is_incomplete(client: openai.OpenAI) -> None:
    r = client.responses.create(model=MODEL, input="Hi #sim tokens=30 think=0", max_output_tokens=5)
    assert r.status == "incomplete" and r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"


def test_midstream_failure_ends_with_response_failed(client: openai.OpenAI) -> None:
    stream = client.responses.create(
        model=MODEL, input="Hi #sim tokens=40 midstream_drop=10 think=0", stream=True
    )
    events = list(stream)
    assert events[-1].type == "response.failed"
    assert events[-1].response.error is not None  # type: ignore[union-attr]
    with (
        pytest.raises(RuntimeError, match=r"response\.completed"),
        client.responses.stream(model=MODEL, input="Hi #sim tokens=40 midstream_drop=10 think=0") as helper,
    ):
        helper.get_final_response()


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"store": "yes"}, "store"),
        ({"previous_response_id": 7}, "previous_response_id"),
        ({"background": True}, "background"),
        ({"tool_choice": {"type": "function", "name": "nope"}, "tools": TOOLS}, "tool_choice"),
        ({"text": {"a": 1}}, "text.a"),
        ({"text": {"verbosity": "loud"}}, "text.verbosity"),
        ({"stream": 1}, "stream"),
        ({"temperature": True}, "temperature"),
        ({"max_output_tokens": True}, "max_output_tokens"),
        ({"service_tier": 3}, "service_tier"),
        (
            {"input": [{"type": "reasoning", "summary": [], "encrypted_content": "gg1.e30.forged"}]},
            "input[0].encrypted_content",
        ),
    ],
)
def test_refusals_are_clear_400s(client: openai.OpenAI, fields: dict[str, Any], param: str) -> None:
    body: dict[str, Any] = {"model": MODEL, "input": "hi", **fields}
    with pytest.raises(openai.BadRequestError) as info:
        client.post("/responses", body=body, cast_to=httpx.Response)
    error = info.value.body
    assert isinstance(error, dict) and error["param"] == param and error["type"] == "invalid_request_error"
