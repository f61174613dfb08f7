"""The released LangChain Anthropic integration (`langchain-anthropic`) on /v1/messages: a
`bind_tools` round trip, with Claude model names served through the gateway's aliases."""

from __future__ import annotations

from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool

from infra.sim.server import SimServer
from tests.clients.conftest import KEY, prompts, turns
from tests.fixtures.gateway import Gateway


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"rainy in {city} #sim think=0 say=Rainy-in-{city}"


def test_bind_tools_round_trip(client_gw: Gateway, client_sim: SimServer) -> None:
    since = turns(client_sim)
    llm = ChatAnthropic(  # type: ignore[call-arg]
        model="claude-haiku-4-5", base_url=client_gw.url, api_key=KEY, max_retries=0, timeout=30
    ).bind_tools([get_weather])
    messages: list = [HumanMessage('Weather in Oslo? #sim tool=get_weather args={"city": "Oslo"}')]
    first = llm.invoke(messages)
    assert [(c["name"], c["args"]) for c in first.tool_calls] == [("get_weather", {"city": "Oslo"})]
    assert first.response_metadata["stop_reason"] == "tool_use"
    call = first.tool_calls[0]
    messages += [first, ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])]
    final = llm.invoke(messages)
    assert final.content == "Rainy-in-Oslo" and not final.tool_calls
    sent = prompts(client_sim, since)
    assert len(sent) == 2 and "## get_weather" in sent[0]
    assert "<tool_name>get_weather</tool_name>" in sent[1]
    assert f"tool result for {call['id']}" in sent[1] and "rainy in Oslo" in sent[1]
    assert client_sim.log.last_chat().mode == "fast"  # claude-haiku-* -> the non-reasoning model
