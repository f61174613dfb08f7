"""The released LangChain OpenAI integration (`langchain-openai`) on chat completions: a
`bind_tools` round trip, and structured output in JSON-schema and JSON mode."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from infra.sim.server import SimServer
from tests.clients.conftest import KEY, prompts, turns
from tests.fixtures.gateway import Gateway

MODEL = "grok-4.20-0309-reasoning"


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city} #sim think=0 say=Sunny-in-{city} (end)"


class Trip(BaseModel):
    city: str
    days: int


@pytest.fixture
def llm(client_gw: Gateway) -> Iterator[ChatOpenAI]:
    with httpx.Client(timeout=30) as http:  # closed here, not left to the garbage collector
        yield ChatOpenAI(
            model=MODEL, base_url=client_gw.url + "/v1", api_key=KEY, max_retries=0, http_client=http
        )  # type: ignore[arg-type]


def test_bind_tools_round_trip(llm: ChatOpenAI, client_sim: SimServer) -> None:
    since = turns(client_sim)
    tooled = llm.bind_tools([get_weather])
    messages: list = [HumanMessage('Weather in Lyon? #sim think=2 tool=get_weather args={"city": "Lyon"}')]
    first = tooled.invoke(messages)
    assert [(c["name"], c["args"]) for c in first.tool_calls] == [("get_weather", {"city": "Lyon"})]
    call = first.tool_calls[0]
    messages += [first, ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])]
    final = tooled.invoke(messages)
    assert final.content == "Sunny-in-Lyon" and not final.tool_calls
    sent = prompts(client_sim, since)
    assert len(sent) == 2 and "## get_weather" in sent[0]
    assert f"tool result for {call['id']}" in sent[1] and "sunny in Lyon" in sent[1]


def test_structured_output(llm: ChatOpenAI, client_sim: SimServer) -> None:
    prompt = 'Plan a trip. #sim think=0 say={"city": "Kyoto", "days": 4}'
    schema = llm.with_structured_output(Trip, method="json_schema")
    assert schema.invoke(prompt) == Trip(city="Kyoto", days=4)
    since = turns(client_sim)
    mode = llm.with_structured_output(method="json_mode")
    assert mode.invoke(prompt + " Reply in JSON.") == {"city": "Kyoto", "days": 4}
    [sent] = prompts(client_sim, since)
    assert "The value must be a JSON object." in sent
