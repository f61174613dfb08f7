"""The released OpenAI Agents SDK (`openai-agents`): an agent with a function tool, on Responses
and on chat completions. The tool runs in the SDK; its result carries the next turn's directive,
so the final output proves the result reached the upstream."""

from __future__ import annotations

import asyncio

import pytest
from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI
from pydantic import BaseModel

from infra.sim.server import SimServer
from tests.clients.conftest import KEY, prompts, turns
from tests.fixtures.gateway import Gateway

MODEL = "grok-4.20-0309-reasoning"


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city} #sim think=0 say=Sunny-in-{city} (end)"


async def run(gw: Gateway, api: str, city: str) -> str:
    client = AsyncOpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0)
    model = (
        OpenAIResponsesModel(model=MODEL, openai_client=client)
        if api == "responses"
        else OpenAIChatCompletionsModel(model=MODEL, openai_client=client)
    )
    agent = Agent(
        name="forecaster",
        instructions="Answer with the forecast.",
        tools=[get_weather],
        model=model,
    )
    try:
        result = await Runner.run(
            agent, f'Weather in {city}? #sim think=2 tool=get_weather args={{"city": "{city}"}}'
        )
    finally:
        await client.close()
    return str(result.final_output)


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_agent_with_a_function_tool(client_gw: Gateway, client_sim: SimServer, api: str) -> None:
    set_tracing_disabled(True)  # no trace export to OpenAI's servers from a test
    city = f"Agentville-{api}"
    since = turns(client_sim)
    assert asyncio.run(run(client_gw, api, city)) == f"Sunny-in-{city}"
    first, second = prompts(client_sim, since)
    assert "Answer with the forecast." in first and "## get_weather" in first
    assert (
        "<tool_name>get_weather</tool_name>" in second
        and f"sunny in {city}" in second.rsplit("[tool result", 1)[1]
    )


class Trip(BaseModel):
    city: str
    days: int


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_agent_with_an_output_type(client_gw: Gateway, client_sim: SimServer, api: str) -> None:
    """`output_type` asks for a JSON schema (`text.format` / `response_format`); the gateway's
    checked JSON is what the SDK parses."""
    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=client_gw.url + "/v1", api_key=KEY, max_retries=0)
    model = (
        OpenAIResponsesModel(model=MODEL, openai_client=client)
        if api == "responses"
        else OpenAIChatCompletionsModel(model=MODEL, openai_client=client)
    )
    agent = Agent(name="planner", instructions="Plan the trip.", model=model, output_type=Trip)

    async def run() -> object:
        try:
            # the model wraps the JSON in a fence and a sentence; the gateway hands over the JSON alone
            prompt = 'Two days in Porto. #sim think=2 say="Here:\\n```json\\n{\\"city\\": \\"Porto\\", \\"days\\": 2}\\n```"'
            return (await Runner.run(agent, prompt)).final_output
        finally:
            await client.close()

    since = turns(client_sim)
    assert asyncio.run(run()) == Trip(city="Porto", days=2)
    [sent] = prompts(client_sim, since)
    assert "# Output format" in sent and '"days"' in sent


def test_agent_with_the_hosted_web_search_tool(client_gw: Gateway, client_sim: SimServer) -> None:
    """`WebSearchTool` (run on OpenAI's servers there): here the upstream's own search runs, and the
    SDK reads back its `web_search_call` item and the answer's `url_citation` annotations."""
    from agents import WebSearchTool
    from agents.items import MessageOutputItem, ToolCallItem

    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=client_gw.url + "/v1", api_key=KEY, max_retries=0)
    agent = Agent(
        name="researcher",
        instructions="Cite your sources.",
        tools=[WebSearchTool()],
        model=OpenAIResponsesModel(model=MODEL, openai_client=client),
    )

    async def go() -> object:
        try:
            return await Runner.run(agent, "What makes tides? #sim cite=2 tokens=4 think=2")
        finally:
            await client.close()

    result = asyncio.run(go())
    items = result.new_items  # type: ignore[attr-defined]
    calls = [i for i in items if isinstance(i, ToolCallItem)]
    assert [c.raw_item.type for c in calls] == ["web_search_call"]
    message = next(i for i in items if isinstance(i, MessageOutputItem))
    annotations = message.raw_item.content[0].annotations  # type: ignore[union-attr]
    assert [a.type for a in annotations] == ["url_citation", "url_citation"]
    assert all(a.url.startswith("https://en.wikipedia.org/wiki/") for a in annotations)
    assert "is cited." in str(result.final_output)  # type: ignore[attr-defined]
