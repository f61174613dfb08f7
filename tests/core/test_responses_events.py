"""Golden Responses event sequences, each event validated against the official SDK's types and the
whole stream accumulated by the SDK's own `ResponseStreamState` (the strictest judge)."""

from __future__ import annotations

from typing import Any

import pytest
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from core.errors import RateLimited
from core.events import Event, Fault, Finish, ReasoningDelta, TextDelta, ToolCall, Usage
from core.transcode.responses import ResponsesState

EVENT = TypeAdapter(ResponseStreamEvent)


def run(events: list[Event]) -> tuple[ResponsesState, list[dict[str, Any]]]:
    state = ResponsesState("grok-test", id="resp_1", created_at=1)
    out = state.start() + state.handle(events)
    return state, out


def sdk_accumulate(out: list[dict[str, Any]]) -> ResponseStreamState[Any]:
    from openai._types import omit

    acc: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for raw in out:
        acc.handle_event(EVENT.validate_python(raw))
    return acc


def types(out: list[dict[str, Any]]) -> list[str]:
    return [e["type"].removeprefix("response.") for e in out]


def test_reasoning_text_and_a_call() -> None:
    state, out = run(
        [
            ReasoningDelta("hmm "),
            ReasoningDelta("ok"),
            TextDelta("Let me "),
            TextDelta("check."),
            ToolCall("call_1", "get_weather", '{"city":"Paris","note":"' + "x" * 40 + '"}'),
            Usage(10, 5, 2),
            Finish("tool_calls"),
        ]
    )
    assert types(out) == [
        "created",
        "in_progress",
        "output_item.added",
        "reasoning_summary_part.added",
        "reasoning_summary_text.delta",
        "reasoning_summary_text.delta",
        "reasoning_summary_text.done",
        "reasoning_summary_part.done",
        "output_item.done",
        "output_item.added",
        "content_part.added",
        "output_text.delta",
        "output_text.delta",
        "output_text.done",
        "content_part.done",
        "output_item.done",
        "output_item.added",
        "function_call_arguments.delta",
        "function_call_arguments.delta",
        "function_call_arguments.delta",
        "function_call_arguments.done",
        "output_item.done",
        "completed",
    ]
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    assert [e.get("output_index") for e in out if e["type"] == "response.output_item.added"] == [0, 1, 2]
    acc = sdk_accumulate(out)
    final = acc._completed_response
    assert final is not None and final.status == "completed"
    assert final.output_text == "Let me check."
    call = final.output[2]
    assert call.type == "function_call" and call.call_id == "call_1" and call.name == "get_weather"
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens == 2
    assert Response.model_validate(state.final()).output[0].type == "reasoning"


def test_plain_text() -> None:
    state, out = run([TextDelta("Hi"), Usage(3, 1), Finish()])
    assert types(out) == [
        "created",
        "in_progress",
        "output_item.added",
        "content_part.added",
        "output_text.delta",
        "output_text.done",
        "content_part.done",
        "output_item.done",
        "completed",
    ]
    body = state.final()
    assert body["status"] == "completed" and body["output"][0]["content"][0]["text"] == "Hi"
    assert body["usage"] == {
        "input_tokens": 3,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 1,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 4,
    }
    sdk_accumulate(out)
    created = out[0]["response"]
    assert created["status"] == "in_progress" and created["output"] == [] and created["usage"] is None


def test_length_is_incomplete() -> None:
    state, out = run([TextDelta("Hi"), Usage(3, 1), Finish("length")])
    assert out[-1]["type"] == "response.incomplete"
    assert out[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert out[-2]["item"]["status"] == "incomplete"
    sdk_accumulate(out)
    assert state.final()["status"] == "incomplete"


def test_fault_mid_stream_fails_the_response() -> None:
    state, out = run([TextDelta("Hi"), Fault(RateLimited("slow down"))])
    assert types(out)[-3:] == ["output_item.done", "error", "failed"]
    failed = out[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "rate_limit_exceeded", "message": "slow down"}
    acc = sdk_accumulate(out)
    assert acc._completed_response is None
    with pytest.raises(RateLimited):
        state.final()


def test_fault_before_anything() -> None:
    _, out = run([Fault(RateLimited("x"))])
    assert types(out) == ["created", "in_progress", "error", "failed"]
    sdk_accumulate(out)


def test_reasoning_can_be_hidden() -> None:
    state = ResponsesState("m", reasoning=False)
    out = state.start() + state.handle([ReasoningDelta("secret"), TextDelta("a"), Finish()])
    assert "secret" not in str(out)
