"""Responses and Messages requests -> the normalised chat request: history, tools, refusals."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from core.errors import InvalidRequest
from core.transcode.anthropic_input import CountTokensRequest, MessagesRequest, normalize_messages
from core.transcode.responses_input import ResponsesRequest, normalize_responses

MODEL = "grok-4.20-0309-reasoning"
FN: dict[str, Any] = {"type": "function", "name": "f", "parameters": {"type": "object"}}
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nxx").decode()


def responses(**kw: Any) -> Any:
    return normalize_responses(ResponsesRequest.model_validate({"model": MODEL, **kw}))


def messages(**kw: Any) -> Any:
    body = {"model": MODEL, "max_tokens": 100, **kw}
    return normalize_messages(MessagesRequest.model_validate(body), max_tokens=body["max_tokens"])


def test_responses_history_with_calls_and_outputs() -> None:
    chat = responses(
        instructions="Rules.",
        tools=[FN],
        input=[
            {
                "role": "user",
                "content": [{"type": "input_text", "text": "Q"}, {"type": "input_image", "image_url": PNG}],
            },
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a": 1}'},
            {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "two"}],
            },
        ],
    )
    text = chat.message
    assert text.startswith("[system]: Rules.\n\n[system]: # Tools")
    assert (
        '[assistant]: <tool_calls><tool_call><tool_name>f</tool_name><parameters>{"a":1}</parameters></tool_call>'
        "<tool_call><tool_name>f</tool_name><parameters>{}</parameters></tool_call></tool_calls>"
    ) in text
    assert text.endswith("[tool result for c1 (f)]: one\n\n[tool result for c2 (f)]: two")
    assert len(chat.attachments) == 1 and chat.tools is not None and chat.tools.id_prefix == "call_"


def test_responses_tool_choice_forms() -> None:
    assert responses(input="x", tools=[FN], tool_choice="none").tools is None
    forced = responses(input="x", tools=[FN], tool_choice={"type": "function", "name": "f"}).tools
    assert forced.choice.mode == "forced" and forced.choice.name == "f"
    allowed = responses(
        input="x",
        tools=[FN, {**FN, "name": "g"}],
        tool_choice={
            "type": "allowed_tools",
            "mode": "required",
            "tools": [{"type": "function", "name": "g"}],
        },
    ).tools
    assert [t.name for t in allowed.tools] == ["g"] and allowed.choice.mode == "required"
    assert not responses(input="x", reasoning={"effort": "none"}).reasoning
    assert responses(input="x", reasoning={"effort": "high"}).reasoning


@pytest.mark.parametrize(
    ("kw", "param"),
    [
        ({"input": "x", "background": True}, "background"),
        ({"input": [{"type": "computer_call"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
        ),
        ({"input": "x", "tool_choice": "required"}, "tool_choice"),
        ({"input": "x", "include": ["message.output_text.logprobs"]}, "include"),
    ],
)
def test_responses_refusals(kw: dict[str, Any], param: str) -> None:
    """(`store` and `previous_response_id` are honoured: tests/functions/test_stored_responses_e2e.py.)"""
    with pytest.raises(InvalidRequest) as info:
        responses(**kw)
    assert info.value.param == param


def test_messages_history_system_blocks_and_mixed_tool_results() -> None:
    chat = messages(
        system=[{"type": "text", "text": "S1"}, {"type": "text", "text": "S2"}],
        tools=[{"name": "f", "input_schema": {"type": "object"}}],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        stop_sequences=["END"],
        thinking={"type": "enabled", "budget_tokens": 1024},
        max_tokens=2000,
        messages=[
            {"role": "user", "content": "Q"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "SECRET-THOUGHT", "signature": "s"},
                    {"type": "text", "text": "Calling."},
                    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "before"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "R"}],
                    },
                    {"type": "text", "text": "after"},
                ],
            },
        ],
    )
    text = chat.message
    assert text.startswith("[system]: S1\nS2\n\n[system]: # Tools")
    assert "[assistant]: Calling.\n\n[assistant]: <tool_calls>" in text
    assert text.endswith("[user]: before\n\n[tool result for toolu_1 (f)]: R\n\n[user]: after")
    assert "SECRET-THOUGHT" not in text  # thinking is not replayed
    assert chat.stop == ("END",) and chat.max_output_tokens == 2000 and chat.reasoning
    spec = chat.tools
    assert spec.id_prefix == "toolu_" and spec.choice.mode == "required" and not spec.parallel


@pytest.mark.parametrize(
    ("kw", "param"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 2000}}, "max_tokens"),
        ({"thinking": {"type": "enabled"}}, "thinking.enabled.budget_tokens"),
        (
            {"tool_choice": {"type": "tool", "name": "nope"}, "tools": [{"name": "f", "input_schema": {}}]},
            "tool_choice.name",
        ),
        ({"tools": [{"name": "f"}]}, "tools.0.input_schema"),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "x"}]}]},
            "messages.0.content.0.type",
        ),
    ],
)
def test_messages_refusals(kw: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        messages(**{"messages": [{"role": "user", "content": "hi"}], **kw})
    assert info.value.param == param


def test_count_tokens_body_needs_no_max_tokens() -> None:
    chat = normalize_messages(
        CountTokensRequest.model_validate({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    )
    assert chat.message == "hi" and chat.max_output_tokens is None
