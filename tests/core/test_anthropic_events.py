"""Golden Messages event sequences, validated against the official SDK's event types and
accumulated by the SDK's own `accumulate_event` (what `messages.stream()` runs)."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from core.errors import Overloaded
from core.events import Event, Fault, Finish, ReasoningDelta, TextDelta, ToolCall, Usage
from core.transcode.anthropic import MessagesState, signature

EVENT = TypeAdapter(RawMessageStreamEvent)


def run(
    events: list[Event], *, thinking: bool = True
) -> tuple[MessagesState, list[tuple[str, dict[str, Any]]]]:
    state = MessagesState("grok-test", input_tokens=7, thinking=thinking, id="msg_1")
    return state, state.start() + state.handle(events)


def accumulate(out: list[tuple[str, dict[str, Any]]]) -> Any:
    snapshot = None
    bufs: dict[int, bytes] = {}
    for name, data in out:
        assert name == data["type"]
        if name in ("ping", "error"):
            continue
        snapshot = accumulate_event(
            event=EVENT.validate_python(data), current_snapshot=snapshot, json_bufs=bufs
        )
    return snapshot


def shape(out: list[tuple[str, dict[str, Any]]]) -> list[str]:
    names = []
    for name, data in out:
        if name == "content_block_start":
            names.append(f"start:{data['content_block']['type']}@{data['index']}")
        elif name == "content_block_delta":
            names.append(f"{data['delta']['type']}@{data['index']}")
        elif name == "content_block_stop":
            names.append(f"stop@{data['index']}")
        else:
            names.append(name)
    return names


def test_thinking_text_and_tool_use() -> None:
    args = '{"city":"Paris","note":"' + "x" * 40 + '"}'
    state, out = run(
        [
            ReasoningDelta("hmm"),
            TextDelta("Let me check."),
            ToolCall("toolu_1", "get_weather", args),
            Usage(12, 6, 1),
            Finish("tool_calls"),
        ]
    )
    assert shape(out) == [
        "message_start",
        "ping",
        "start:thinking@0",
        "thinking_delta@0",
        "signature_delta@0",
        "stop@0",
        "start:text@1",
        "text_delta@1",
        "stop@1",
        "start:tool_use@2",
        "input_json_delta@2",
        "input_json_delta@2",
        "input_json_delta@2",
        "stop@2",
        "message_delta",
        "message_stop",
    ]
    assert out[0][1]["message"]["usage"]["input_tokens"] == 7
    assert out[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 12,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 6,
        },
    }
    snapshot = accumulate(out)
    assert [b.type for b in snapshot.content] == ["thinking", "text", "tool_use"]
    assert snapshot.content[0].signature == signature("hmm")
    assert snapshot.content[2].input == {"city": "Paris", "note": "x" * 40}
    assert snapshot.stop_reason == "tool_use"
    final = Message.model_validate(state.final())
    assert final.content[0].type == "thinking" and final.usage.output_tokens == 6


@pytest.mark.parametrize(
    ("finish", "reason", "sequence"),
    [
        (Finish(), "end_turn", None),
        (Finish("length"), "max_tokens", None),
        (Finish("stop", "END"), "stop_sequence", "END"),
    ],
)
def test_stop_reasons(finish: Finish, reason: str, sequence: str | None) -> None:
    state, out = run([TextDelta("a"), Usage(1, 1), finish])
    assert out[-2][1]["delta"] == {"stop_reason": reason, "stop_sequence": sequence}
    snapshot = accumulate(out)
    assert snapshot.stop_reason == reason and snapshot.stop_sequence == sequence
    assert state.final()["stop_reason"] == reason


def test_thinking_hidden_unless_enabled() -> None:
    _, out = run([ReasoningDelta("secret"), TextDelta("a"), Finish()], thinking=False)
    assert shape(out) == [
        "message_start",
        "ping",
        "start:text@0",
        "text_delta@0",
        "stop@0",
        "message_delta",
        "message_stop",
    ]


def test_fault_is_an_error_event() -> None:
    state, out = run([TextDelta("a"), Fault(Overloaded("busy"))])
    assert out[-1] == ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    with pytest.raises(Overloaded):
        state.final()
