"""Web search from the client's tools, end to end with the official SDKs over the simulator:
OpenAI's `web_search` tool (Responses), `web_search_options` (chat) and Anthropic's
`web_search_*` server tool switch the upstream's search on, and the answer carries what it found
the way each API does. The simulator's `#sim cite=N` searches and cites N results."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from anthropic.types import (
    CitationsWebSearchResultLocation,
    ServerToolUseBlock,
    TextBlock,
    WebSearchToolResultBlock,
)
from openai.types.responses import ResponseFunctionWebSearch, ResponseOutputMessage

from core.catalog import Tier
from infra.sim.script import build
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, chat_transport, start_gateway

MODEL = "grok-4.20-0309-reasoning"
PROMPT = "What makes tides? #sim cite=2 tokens=5 think=4"


def _search_disabled(sim: SimServer) -> bool | None:
    """`disableSearch` of the last chat turn (a REST body field: None over the gateway WebSocket,
    whose messages have no such flag)."""
    turn = sim.log.last_chat()
    return turn.record.json["disableSearch"] if turn.transport == "rest" else None


def _results(prompt: str = PROMPT) -> list[dict[str, str]]:
    return list(build(prompt, "expert").results)  # what the simulator's search finds


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    server = SimServer().start()
    yield server
    server.stop()


def _gateway(sim: SimServer, tmp: Path, **env: str) -> Gateway:
    base = {"GROKGATE_UPSTREAM_URL": sim.url, "GROKGATE_ASSETS_URL": sim.url, "GROKGATE_RETRY_BUDGET": "0"}
    return start_gateway({**base, **env}, tmp, [("sim-super-unlimited-ws1", Tier.SUPER)])


@pytest.fixture(scope="module")
def gw(sim: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = _gateway(sim, tmp_path_factory.mktemp("search"))
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def oa(gw: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0, timeout=30) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def an(gw: Gateway) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0, timeout=30) as sdk:
        yield sdk


def _check_url_citations(text: str, annotations: list[Any], results: list[dict[str, str]]) -> None:
    assert [a.url for a in annotations] == [r["url"] for r in results]
    for n, (a, r) in enumerate(zip(annotations, results, strict=True), start=1):
        assert getattr(a, "type", "url_citation") == "url_citation" and a.title == r["title"]
        assert text[a.start_index : a.end_index] == f"[[{n}]]({r['url']})"


# --- Responses ------------------------------------------------------------------------------------


def _check_response(r: Any) -> None:
    results = _results()
    assert [item.type for item in r.output] == ["web_search_call", "message"]
    call, message = r.output
    assert isinstance(call, ResponseFunctionWebSearch) and call.status == "completed"
    assert call.action.type == "search" and call.action.query  # type: ignore[union-attr]
    assert [s.url for s in call.action.sources or ()] == [x["url"] for x in results]  # type: ignore[union-attr]
    assert isinstance(message, ResponseOutputMessage)
    part = message.content[0]
    _check_url_citations(part.text, part.annotations, results)  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["web_search", "web_search_preview"])
def test_responses_web_search_tool(sim: SimServer, oa: openai.OpenAI, kind: str) -> None:
    raw = oa.responses.with_raw_response.create(
        model=MODEL,
        input=PROMPT,
        tools=[{"type": kind}],  # type: ignore[list-item]
        reasoning={"effort": "none"},
        include=["web_search_call.action.sources"],
    )
    assert "web_search" not in raw.headers.get("x-grokgate-ignored-params", "")
    _check_response(raw.parse())
    assert _search_disabled(sim) is (False if chat_transport() == "rest" else None)


def test_responses_web_search_streamed(oa: openai.OpenAI) -> None:
    kinds: list[str] = []
    with oa.responses.stream(
        model=MODEL,
        input=PROMPT,
        tools=[{"type": "web_search"}],
        reasoning={"effort": "none"},
        include=["web_search_call.action.sources"],
    ) as stream:
        for event in stream:
            kinds.append(event.type)
        final = stream.get_final_response()
    _check_response(final)
    for kind in (
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
    ):
        assert kinds.count(kind) == 1
    assert kinds.count("response.output_text.annotation.added") == 2


def test_responses_without_the_tool_show_the_search_as_reasoning_and_still_annotate(
    oa: openai.OpenAI,
) -> None:
    r = oa.responses.create(model=MODEL, input=PROMPT, reasoning={"effort": "high"})
    assert "web_search_call" not in [item.type for item in r.output]
    reasoning = " ".join(s.text for item in r.output if item.type == "reasoning" for s in item.summary)  # type: ignore[union-attr]
    assert "[web_search:" in reasoning
    message = next(item for item in r.output if item.type == "message")
    part = message.content[0]  # type: ignore[union-attr]
    _check_url_citations(part.text, part.annotations, _results())  # type: ignore[union-attr]


def test_sources_only_when_included(oa: openai.OpenAI) -> None:
    r = oa.responses.create(
        model=MODEL, input=PROMPT, tools=[{"type": "web_search"}], reasoning={"effort": "none"}
    )
    call = r.output[0]
    assert call.type == "web_search_call" and not call.action.sources  # type: ignore[union-attr]


def test_a_response_with_a_search_replays(oa: openai.OpenAI) -> None:
    first = oa.responses.create(model=MODEL, input=PROMPT, tools=[{"type": "web_search"}])
    again = oa.responses.create(
        model=MODEL,
        input=[
            *[i.model_dump(exclude_none=True) for i in first.output],
            {"role": "user", "content": "More? #sim say=ok"},
        ],
        tools=[{"type": "web_search"}],
    )
    assert again.output_text == "ok"
    chained = oa.responses.create(
        model=MODEL, input="More? #sim say=ok", previous_response_id=first.id, tools=[{"type": "web_search"}]
    )
    assert chained.output_text == "ok"


# --- chat completions ----------------------------------------------------------------------------


def test_chat_web_search_options_annotations(sim: SimServer, oa: openai.OpenAI) -> None:
    done = oa.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}], web_search_options={}
    )
    message = done.choices[0].message
    assert message.annotations
    _check_url_citations(message.content or "", [a.url_citation for a in message.annotations], _results())
    assert all(a.type == "url_citation" for a in message.annotations)
    assert _search_disabled(sim) is (False if chat_transport() == "rest" else None)
    text, annotations = "", []
    for chunk in oa.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}], web_search_options={}, stream=True
    ):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta.model_dump()
        text += delta.get("content") or ""
        annotations += delta.get("annotations") or []
    assert text == message.content
    assert [a["url_citation"] for a in annotations] == [
        a.url_citation.model_dump() for a in message.annotations
    ]


# --- Anthropic Messages --------------------------------------------------------------------------

SEARCH_TOOL: Any = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}


def _check_message(m: Any) -> None:
    results = _results()
    kinds = [b.type for b in m.content]
    assert kinds[:2] == ["server_tool_use", "web_search_tool_result"] and "text" in kinds, kinds
    use, result = m.content[0], m.content[1]
    assert isinstance(use, ServerToolUseBlock) and use.name == "web_search" and use.input["query"]
    assert isinstance(result, WebSearchToolResultBlock) and result.tool_use_id == use.id
    assert [x.url for x in result.content] == [x["url"] for x in results]  # type: ignore[union-attr]
    assert [x.title for x in result.content] == [x["title"] for x in results]  # type: ignore[union-attr]
    citations = [c for b in m.content if isinstance(b, TextBlock) for c in b.citations or ()]
    assert [c.url for c in citations] == [x["url"] for x in results]
    assert all(isinstance(c, CitationsWebSearchResultLocation) and c.cited_text for c in citations)
    assert citations[0].cited_text.endswith("is cited.")
    assert m.usage.server_tool_use is not None and m.usage.server_tool_use.web_search_requests == 1


def test_messages_web_search_tool(sim: SimServer, an: anthropic.Anthropic) -> None:
    m = an.messages.create(
        model=MODEL, max_tokens=2048, tools=[SEARCH_TOOL], messages=[{"role": "user", "content": PROMPT}]
    )
    _check_message(m)
    assert _search_disabled(sim) is (False if chat_transport() == "rest" else None)


def test_messages_web_search_streamed(an: anthropic.Anthropic) -> None:
    with an.messages.stream(
        model=MODEL,
        max_tokens=2048,
        tools=[SEARCH_TOOL],
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": PROMPT}],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert "citation" in kinds  # the SDK's event for a citations_delta
    final.content = [b for b in final.content if b.type != "thinking"]
    _check_message(final)


def test_messages_history_with_search_blocks_is_accepted(an: anthropic.Anthropic) -> None:
    first = an.messages.create(
        model=MODEL, max_tokens=2048, tools=[SEARCH_TOOL], messages=[{"role": "user", "content": PROMPT}]
    )
    again = an.messages.create(
        model=MODEL,
        max_tokens=2048,
        tools=[SEARCH_TOOL],
        messages=[
            {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": "Thanks #sim say=welcome"},
        ],
    )
    assert again.content[-1].type == "text" and again.content[-1].text == "welcome"  # type: ignore[union-attr]


# --- GROKGATE_WEB_SEARCH=tool: search only when a client asks ------------------------------------


def test_tool_mode_searches_only_when_asked(sim: SimServer, tmp_path: Path) -> None:
    # the REST transport: `disableSearch` is a field of its body (the socket has no such flag)
    gateway = _gateway(sim, tmp_path, GROKGATE_WEB_SEARCH="tool", GROKGATE_CHAT_TRANSPORT="rest")
    try:
        body = {"model": MODEL, "input": PROMPT}
        plain = httpx.post(gateway.url + "/v1/responses", json=body, timeout=30).json()
        assert _search_disabled(sim) is True
        assert "[[1]]" not in str(plain["output"])  # no search ran, nothing to cite
        asked = httpx.post(
            gateway.url + "/v1/responses", json={**body, "tools": [{"type": "web_search"}]}, timeout=30
        ).json()
        assert _search_disabled(sim) is False
        assert "web_search_call" in [item["type"] for item in asked["output"]]
    finally:
        gateway.stop()
