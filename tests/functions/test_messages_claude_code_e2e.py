"""/v1/messages as Claude Code sends it, over HTTP to the simulator: system messages inside
`messages`, adaptive thinking and effort, context_management edits, typed and server tools, tool
names; each test reads the prompt that reached the upstream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.catalog import Tier
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, start_gateway

KEY = "sk-test-key"
AUTO = "grok-4.20-0309"
HEADER = "x-grokgate-ignored-params"
BASH = {"type": "bash_20250124", "name": "bash"}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, SimServer]]:
    sim = SimServer().start()
    env = {"GROKGATE_UPSTREAM_URL": sim.url, "GROKGATE_ASSETS_URL": sim.url, "GROKGATE_API_KEYS": KEY}
    tmp: Path = tmp_path_factory.mktemp("cc")
    gateway = start_gateway(env, tmp, [("sim-super-unlimited-cc1", Tier.SUPER)])
    yield gateway, sim
    gateway.stop()
    sim.stop()


def post(gw: tuple[Gateway, SimServer], path: str = "/v1/messages", **body: Any) -> httpx.Response:
    body.setdefault("model", AUTO)
    if path == "/v1/messages":
        body.setdefault("max_tokens", 256)
    return httpx.post(gw[0].url + path, json=body, headers={"x-api-key": KEY}, timeout=30)


def last_prompt(gw: tuple[Gateway, SimServer]) -> tuple[str, str]:
    turn = gw[1].log.last_chat()
    return turn.message, turn.mode


def test_system_messages_join_the_system_part_in_order(gw: tuple[Gateway, SimServer]) -> None:
    response = post(
        gw,
        system=[{"type": "text", "text": "SYS-ONE", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "QUESTION #sim tokens=2"}]},
            {
                "role": "system",
                "content": [{"type": "text", "text": "SYS-TWO", "cache_control": {"type": "ephemeral"}}],
            },
            {"role": "system", "content": "SYS-THREE"},
        ],
        metadata={"user_id": '{"device_id":"d","session_id":"s"}'},
        cache_control={"type": "ephemeral"},
    )
    assert response.status_code == 200, response.text
    assert HEADER not in response.headers
    prompt, _ = last_prompt(gw)
    assert (
        prompt.index("[system]: SYS-ONE")
        < prompt.index("[system]: SYS-TWO")
        < prompt.index("[system]: SYS-THREE")
    )
    assert prompt.index("SYS-THREE") < prompt.index("[user]: QUESTION")


@pytest.mark.parametrize(
    ("thinking", "effort", "mode", "shown"),
    [
        ({"type": "adaptive"}, None, "auto", True),
        ({"type": "adaptive"}, "low", "fast", False),  # fast mode does not think
        ({"type": "adaptive"}, "max", "expert", True),
        ({"type": "disabled"}, "high", "fast", False),
        (None, "high", "expert", False),  # thinking not asked for: none shown
    ],
)
def test_thinking_and_effort_pick_the_upstream_mode(
    gw: tuple[Gateway, SimServer], thinking: Any, effort: str | None, mode: str, shown: bool
) -> None:
    extra: dict[str, Any] = {"output_config": {"effort": effort}} if effort else {}
    if thinking:
        extra["thinking"] = thinking
    body = post(gw, messages=[{"role": "user", "content": "hi #sim tokens=3 think=3"}], **extra).json()
    assert last_prompt(gw)[1] == mode
    assert [b["type"] for b in body["content"]] == (["thinking", "text"] if shown else ["text"])


def test_display_omitted_keeps_the_block_without_its_text(gw: tuple[Gateway, SimServer]) -> None:
    body = post(
        gw,
        model="grok-4.20-0309-reasoning",
        thinking={"type": "adaptive", "display": "omitted"},
        messages=[{"role": "user", "content": "hi #sim tokens=3 think=3"}],
    ).json()
    thinking, text = body["content"]
    assert thinking["type"] == "thinking" and thinking["thinking"] == "" and thinking["signature"]
    assert text["text"]


def _tool_history(n: int) -> list[Any]:
    messages: list[Any] = [{"role": "user", "content": "start"}]
    for i in range(n):
        name = "keep_me" if i == 0 else "bash"
        messages.append(
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": f"t{i}", "name": name, "input": {"command": f"c{i}"}}],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": f"t{i}", "content": f"RESULT-{i} " + "x " * 50}
                ],
            }
        )
    messages.append({"role": "user", "content": "done? #sim tokens=2"})
    return messages


KEEP_ME = {"name": "keep_me", "input_schema": {"type": "object"}}


def test_clear_tool_uses_elides_old_results_past_the_trigger(gw: tuple[Gateway, SimServer]) -> None:
    edit = {
        "type": "clear_tool_uses_20250919",
        "trigger": {"type": "input_tokens", "value": 10},
        "keep": {"type": "tool_uses", "value": 2},
        "exclude_tools": ["keep_me"],
    }
    response = post(
        gw, tools=[BASH, KEEP_ME], messages=_tool_history(5), context_management={"edits": [edit]}
    )
    assert response.status_code == 200, response.text
    prompt, _ = last_prompt(gw)
    assert "RESULT-0" in prompt  # excluded tool
    assert "RESULT-1" not in prompt and "RESULT-2" not in prompt
    assert "RESULT-3" in prompt and "RESULT-4" in prompt  # the last two kept
    assert prompt.count("[tool result cleared to save context]") == 2


def test_context_edits_below_the_trigger_and_thinking_edits_change_nothing(
    gw: tuple[Gateway, SimServer],
) -> None:
    edits = [
        {"type": "clear_thinking_20251015", "keep": "all"},
        {"type": "clear_tool_uses_20250919"},  # default trigger: 100 000 input tokens
        {"type": "compact_20260101"},
    ]
    response = post(gw, tools=[BASH, KEEP_ME], messages=_tool_history(5), context_management={"edits": edits})
    assert response.status_code == 200, response.text
    assert response.headers[HEADER] == "context_management.edits.2.type=compact_20260101"
    assert all(f"RESULT-{i}" in last_prompt(gw)[0] for i in range(5))
    bad = post(
        gw,
        messages=_tool_history(1),
        context_management={
            "edits": [{"type": "clear_tool_uses_20250919", "keep": {"type": "tool_uses", "value": "3"}}]
        },
    )
    assert bad.status_code == 400 and "context_management.edits.0.keep" in bad.json()["error"]["message"]


def test_typed_client_tools_get_their_published_schemas(gw: tuple[Gateway, SimServer]) -> None:
    tools = [
        BASH,
        {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool", "max_characters": 10000},
        {"type": "memory_20250818", "name": "memory"},
    ]
    call = '#sim tool=bash args={"command": "ls"}'
    body = post(gw, tools=tools, messages=[{"role": "user", "content": f"list {call}"}]).json()
    assert body["stop_reason"] == "tool_use"
    assert body["content"][-1]["name"] == "bash" and body["content"][-1]["input"] == {"command": "ls"}
    prompt, _ = last_prompt(gw)
    assert "## bash" in prompt and '"restart":{"type":"boolean"' in prompt
    assert (
        "## str_replace_based_edit_tool" in prompt
        and '"enum":["view","create","str_replace","insert"]' in prompt
    )
    assert "## memory" in prompt and '"rename"' in prompt


def test_server_tools_are_dropped_and_reported_web_search_is_the_upstreams(
    gw: tuple[Gateway, SimServer],
) -> None:
    tools = [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
        BASH,
        {"type": "web_fetch_20250910", "name": "web_fetch"},
        {"type": "code_execution_20250825", "name": "code_execution"},
    ]
    response = post(
        gw,
        tools=tools,
        messages=[{"role": "user", "content": "hi #sim tokens=2"}],
        mcp_servers=[{"type": "url", "url": "https://example.com/mcp", "name": "x"}],
    )
    assert response.status_code == 200, response.text
    assert response.headers[HEADER] == (
        "mcp_servers, tools.2.type=web_fetch_20250910, tools.3.type=code_execution_20250825"
    )
    prompt, _ = last_prompt(gw)
    assert "## bash" in prompt and "web_search" not in prompt and "code_execution" not in prompt


def test_count_tokens_takes_the_same_body(gw: tuple[Gateway, SimServer]) -> None:
    response = post(
        gw,
        "/v1/messages/count_tokens",
        messages=[{"role": "user", "content": "hi"}, {"role": "system", "content": "more context"}],
        tools=[BASH, {"type": "web_fetch_20250910", "name": "web_fetch"}],
        thinking={"type": "adaptive"},
        output_config={"effort": "high"},
        context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["input_tokens"] > 0
    assert response.headers[HEADER] == "tools.1.type=web_fetch_20250910"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", {"tools": [{"name": "</tool_name><evil>", "input_schema": {"type": "object"}}]}),
        ("/v1/messages", {"tools": [BASH, {"name": "bash", "input_schema": {"type": "object"}}]}),
        ("/v1/chat/completions", {"tools": [{"type": "function", "function": {"name": "a b"}}]}),
        (
            "/v1/chat/completions",
            {
                "tools": [
                    {"type": "function", "function": {"name": "f"}},
                    {"type": "function", "function": {"name": "f"}},
                ]
            },
        ),
        ("/v1/responses", {"tools": [{"type": "function", "name": 'x"><y'}]}),
    ],
)
def test_tool_names_that_break_the_markup_or_repeat_are_400s(
    gw: tuple[Gateway, SimServer], path: str, body: dict[str, Any]
) -> None:
    content = [{"role": "user", "content": "hi"}]
    base: dict[str, Any] = {"model": AUTO, **body}
    if path == "/v1/responses":
        base["input"] = "hi"
    else:
        base["messages"] = content
    if path == "/v1/messages":
        base["max_tokens"] = 10
    response = httpx.post(gw[0].url + path, json=base, headers={"x-api-key": KEY}, timeout=30)
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert "tool name" in message.lower()
