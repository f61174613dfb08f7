"""Responses as Codex sends it, through the official `openai` SDK: namespace and custom tools,
server-run tools dropped and reported, reasoning `encrypted_content` signed and checked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from core.catalog import Tier
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, sim_gateway

MODEL = "grok-4.20-0309-reasoning"
NAMESPACE: dict[str, Any] = {
    "type": "namespace",
    "name": "agents",
    "description": "Sub-agents.",
    "tools": [
        {
            "type": "function",
            "name": "close_agent",
            "description": "Close an agent.",
            "parameters": {
                "type": "object",
                "properties": {"target": {"type": "string"}},
                "required": ["target"],
            },
        }
    ],
}
PATCH: dict[str, Any] = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Edit files. FREEFORM.",
    "format": {"type": "grammar", "syntax": "lark", "definition": 'start: "*** Begin Patch" /(.|\\n)*/'},
}
PATCH_TEXT = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch"
TOOLS = [NAMESPACE, PATCH, {"type": "web_search", "external_web_access": False}, {"type": "tool_search"}]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimServer, Gateway]]:
    with sim_gateway(
        tmp_path_factory.mktemp("responses_tools"), [("sim-super-unlimited-c1", Tier.SUPER)]
    ) as pair:
        yield pair


@pytest.fixture(scope="module")
def sim(both: tuple[SimServer, Gateway]) -> SimServer:
    return both[0]


@pytest.fixture(scope="module")
def gw(both: tuple[SimServer, Gateway]) -> Gateway:
    return both[1]


@pytest.fixture(scope="module")
def client(gw: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="test", max_retries=0, timeout=30) as sdk:
        yield sdk


def last_prompt(sim: SimServer) -> str:
    return sim.log.last_chat().message


def test_namespace_call_carries_its_namespace_and_goes_back(client: openai.OpenAI, sim: SimServer) -> None:
    question = 'Close it. #sim tool=agents.close_agent args={"target": "a1"} think=0'
    raw = client.responses.with_raw_response.create(model=MODEL, input=question, tools=TOOLS)  # type: ignore[arg-type]
    assert raw.headers["x-grokgate-ignored-params"] == "tools.3.type=tool_search"  # web_search is honoured
    done = raw.parse()
    call = next(item for item in done.output if item.type == "function_call")
    assert (
        call.name == "close_agent"
        and call.namespace == "agents"
        and json.loads(call.arguments) == {"target": "a1"}
    )
    prompt = last_prompt(sim)
    assert "## agents.close_agent" in prompt and "## apply_patch" in prompt and "web_search" not in prompt
    again = client.responses.create(
        model=MODEL,
        tools=TOOLS,  # type: ignore[arg-type]
        input=[
            {"role": "user", "content": question},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": "close_agent",
                "namespace": "agents",
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "closed #sim say=done"},
        ],  # type: ignore[list-item]
    )
    assert again.output_text == "done"
    prompt = last_prompt(sim)
    assert "<tool_name>agents.close_agent</tool_name>" in prompt and "(agents.close_agent)]: closed" in prompt


def test_custom_tool_streams_its_input_and_goes_back(client: openai.OpenAI, sim: SimServer) -> None:
    question = f"Patch it. #sim tool=apply_patch args={json.dumps(PATCH_TEXT)} think=0"
    with client.responses.stream(model=MODEL, input=question, tools=TOOLS) as stream:  # type: ignore[arg-type]
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert (
        "response.custom_tool_call_input.delta" in kinds and "response.custom_tool_call_input.done" in kinds
    )
    call = next(item for item in final.output if item.type == "custom_tool_call")
    assert call.name == "apply_patch" and call.input == PATCH_TEXT and call.call_id.startswith("call_")
    prompt = last_prompt(sim)
    assert "FREE-FORM" in prompt and "lark grammar" in prompt
    again = client.responses.create(
        model=MODEL,
        tools=TOOLS,  # type: ignore[arg-type]
        input=[
            {"role": "user", "content": question},
            {"type": "custom_tool_call", "call_id": call.call_id, "name": "apply_patch", "input": call.input},
            {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "patched #sim say=ok"},
        ],  # type: ignore[list-item]
    )
    assert again.output_text == "ok"
    assert f"<parameters>{PATCH_TEXT}</parameters>" in last_prompt(sim)


def test_codex_fields_are_accepted(client: openai.OpenAI) -> None:
    done = client.responses.create(
        model=MODEL,
        input="Hi #sim tokens=3 think=0",
        store=False,
        prompt_cache_key="thread-1",
        safety_identifier="user-1",
        service_tier="auto",
        truncation="auto",
        text={"verbosity": "low"},
        extra_body={"client_metadata": {"session_id": "s1", "turn": {"n": 1}}},
    )
    assert done.status == "completed" and done.text is not None and done.text.verbosity == "low"


def test_encrypted_reasoning_is_signed_and_checked(client: openai.OpenAI) -> None:
    done = client.responses.create(
        model=MODEL, input="Think. #sim tokens=3 think=4", include=["reasoning.encrypted_content"]
    )
    reasoning = next(item for item in done.output if item.type == "reasoning")
    token = reasoning.encrypted_content
    assert token and token.startswith("gg1.")
    history: list[Any] = [{"role": "user", "content": "Think."}, reasoning.model_dump(exclude_none=True)]
    again = client.responses.create(
        model=MODEL, input=[*history, {"role": "user", "content": "More #sim tokens=2"}]
    )
    assert again.status == "completed"
    head, payload, mac = token.split(".")
    forged = f"{head}.{payload[:-2]}AA.{mac}"
    for bad in (forged, "opaque-from-openai", f"{head}.{payload}.{mac[:-1]}"):
        history[1]["encrypted_content"] = bad
        with pytest.raises(openai.BadRequestError) as info:
            client.post("/responses", body={"model": MODEL, "input": history}, cast_to=httpx.Response)
        error = info.value.body
        assert isinstance(error, dict) and error["param"] == "input[1].encrypted_content"
        assert "not issued by this gateway" in error["message"]


def test_chat_custom_tool_round_trip(client: openai.OpenAI, sim: SimServer) -> None:
    tools: Any = [{"type": "custom", "custom": {"name": "apply_patch", "description": "Edit files."}}]
    question = f"Patch it. #sim tool=apply_patch args={json.dumps(PATCH_TEXT)} think=0"
    first = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": question}], tools=tools
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.type == "custom" and call.custom.name == "apply_patch" and call.custom.input == PATCH_TEXT
    second = client.chat.completions.create(
        model=MODEL,
        tools=tools,
        messages=[
            {"role": "user", "content": question},
            {"role": "assistant", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "patched #sim say=ok"},
        ],
    )
    assert second.choices[0].message.content == "ok"
    assert f"<tool_name>apply_patch</tool_name><parameters>{PATCH_TEXT}</parameters>" in last_prompt(sim)


def test_odd_ignored_names_make_a_legal_header(gw: Gateway) -> None:
    """Names the client chose (empty, non-ASCII, with a newline) are percent-encoded in the header."""
    body = {
        "model": MODEL,
        "input": "Hi #sim tokens=2 think=0",
        "": 1,
        "naïve": 2,
        "a\r\nx-evil: 1": 3,
        "tools": [{"type": "bogus\ntool"}],
    }
    response = httpx.post(
        gw.url + "/v1/responses", json=body, headers={"authorization": "Bearer test"}, timeout=30
    )
    assert response.status_code == 200, response.text
    header = response.headers["x-grokgate-ignored-params"]
    assert header == '"", na%C3%AFve, a%0D%0Ax-evil:%201, tools.0.type=bogus%0Atool'
    assert "x-evil" not in response.headers


def test_a_server_tool_choice_is_reported_not_refused(client: openai.OpenAI) -> None:
    raw = client.responses.with_raw_response.create(
        model=MODEL,
        input="Hi #sim tokens=2 think=0",
        tools=[NAMESPACE, {"type": "file_search", "vector_store_ids": ["vs_1"]}],  # type: ignore[list-item]
        tool_choice={"type": "file_search"},
    )
    assert (
        raw.headers["x-grokgate-ignored-params"] == "tools.1.type=file_search, tool_choice.type=file_search"
    )
    assert raw.parse().status == "completed"


def test_client_tool_search_round_trip(client: openai.OpenAI, sim: SimServer) -> None:
    """`tool_search` run by the client: the model's search is a `tool_search_call` item; the
    client's `tool_search_output` brings the tools found, which the model may then call."""
    search: Any = {"type": "tool_search", "execution": "client", "description": "Find deferred tools."}
    question = 'Weather? #sim tool=tool_search args={"query": "weather"} think=0'
    done = client.responses.create(model=MODEL, input=question, tools=[search])
    call = next(item for item in done.output if item.type == "tool_search_call")
    assert call.execution == "client" and call.arguments == {"query": "weather"} and call.call_id
    found = {
        "type": "tool_search_output",
        "call_id": call.call_id,
        "execution": "client",
        "status": "completed",
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "description": "The weather.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
    }
    history: Any = [{"role": "user", "content": question}, call.model_dump(exclude_none=True), found]
    # the found tool's result directive: the model now calls get_weather
    history.append({"role": "user", "content": 'Now. #sim tool=get_weather args={"city": "Oslo"} think=0'})
    again = client.responses.create(model=MODEL, input=history, tools=[search])
    weather = next(item for item in again.output if item.type == "function_call")
    assert weather.name == "get_weather" and json.loads(weather.arguments) == {"city": "Oslo"}
    prompt = last_prompt(sim)
    assert "## get_weather" in prompt and "<tool_name>tool_search</tool_name>" in prompt
    assert "Loaded tools (now available): get_weather" in prompt
