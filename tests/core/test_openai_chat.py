"""The OpenAI chat contract: request checks, chunk sequence, the non-streamed object, limits."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from core.errors import InvalidRequest, NotFound, UpstreamError
from core.events import Event, Fault, Finish, ImageOut, ReasoningDelta, ServerToolUse, TextDelta, Usage
from core.transcode.limits import Limits
from core.transcode.openai_chat import ChatCompletionRequest, ChatCompletionState, normalize_request

MODEL = "grok-4.20-0309-reasoning"


def req(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **fields}
    )


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"logit_bias": {"1": 2}}, "logit_bias"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"response_format": {"a": 1}}, "response_format.type"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format.json_schema.schema",
        ),
        ({"response_format": "json"}, "response_format"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": "grok-imagine-image"}, "model"),
    ],
)
def test_unsupported_parameters_are_400s_naming_them(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        normalize_request(req(**fields))
    assert info.value.param == param and info.value.status == 400


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"max_tokens": True}, "max_tokens"),
        ({"n": True}, "n"),
        ({"stream": 1}, "stream"),
        ({"temperature": True}, "temperature"),
        ({"stream_options": {"include_usage": 1}}, "stream_options.include_usage"),
    ],
)
def test_booleans_are_not_numbers(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(ValidationError) as info:
        req(**fields)
    assert ".".join(str(part) for part in info.value.errors()[0]["loc"]) == param


def test_unknown_model_is_404() -> None:
    with pytest.raises(NotFound):
        normalize_request(req(model="gpt-4"))


def test_honoured_parameters() -> None:
    chat = normalize_request(
        req(n=1, stop="END", max_tokens=50, max_completion_tokens=20, reasoning_effort="none")
    )
    assert chat.stop == ("END",) and chat.max_output_tokens == 20 and not chat.reasoning
    assert normalize_request(req(reasoning_effort="high")).reasoning
    assert not normalize_request(req(model="grok-4.20-0309-non-reasoning")).reasoning
    assert normalize_request(req(tools=[{"type": "function"}], tool_choice="none")).message == "hi"


def run(events: list[Event], **kw: Any) -> tuple[list[dict[str, Any]], ChatCompletionState]:
    state = ChatCompletionState(MODEL, id="chatcmpl-1", created=1, **kw)
    return [*state.start(), *state.handle(events)], state


def deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks if c.get("choices")]


def test_stream_sequence_merges_one_batch_into_few_chunks() -> None:
    usage = Usage(5, 7, 2)
    chunks, _ = run(
        [
            ReasoningDelta("think "),
            ReasoningDelta("more"),
            ServerToolUse("web_search", {"query": "tide"}),
            TextDelta("A "),
            TextDelta("tide."),
            ImageOut("https://a/x.jpg"),
            ImageOut("https://a/p.jpg", progress=50, final=False),
            ImageOut("https://a/m.jpg", moderated=True),
            usage,
            Finish(),
        ],
        include_usage=True,
        image_format="markdown",
    )
    assert deltas(chunks) == [
        {"role": "assistant", "content": "", "refusal": None},
        {"reasoning_content": "think more\n[web_search: tide]\n"},
        {"content": "A tide.\n\n![image](https://a/x.jpg)\n\n"},
        {},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert (
        chunks[-1]["choices"] == []
        and chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 2
    )
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-1" for c in chunks)


def test_reasoning_hidden_when_off_and_no_usage_chunk_unless_asked() -> None:
    chunks, _ = run([ReasoningDelta("x"), TextDelta("y"), Usage(1, 1), Finish()], reasoning=False)
    assert deltas(chunks)[1:] == [{"content": "y"}, {}]


def test_fault_becomes_an_error_chunk() -> None:
    chunks, state = run([TextDelta("par"), Fault(UpstreamError("broke", code="stream_interrupted"))])
    assert chunks[-1] == {
        "error": {"message": "broke", "type": "upstream_error", "param": None, "code": "stream_interrupted"}
    }
    with pytest.raises(UpstreamError):
        state.final()


def test_final_object() -> None:
    _, state = run(
        [ReasoningDelta("r"), TextDelta("a"), TextDelta("b"), Usage(3, 4, 1), Finish("length")], collect=True
    )
    body = state.final()
    assert body["object"] == "chat.completion"
    assert body["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "ab", "refusal": None, "reasoning_content": "r"},
        "logprobs": None,
        "finish_reason": "length",
    }
    assert body["usage"]["total_tokens"] == 7


def test_stop_sequence_split_across_deltas() -> None:
    limits = Limits(stop=("STOP",))
    out = limits.apply([TextDelta("abc ST"), TextDelta("OP def"), Finish()])
    assert "".join(e.text for e in out if isinstance(e, TextDelta)) == "abc "
    assert out[-1] == Finish("stop", "STOP") and limits.done


def test_held_tail_is_released_at_the_end() -> None:
    out = Limits(stop=("STOP",)).apply([TextDelta("abc ST"), Finish()])
    assert "".join(e.text for e in out if isinstance(e, TextDelta)) == "abc ST" and out[-1] == Finish()


def test_token_limit_cuts_with_length() -> None:
    out = Limits(max_tokens=3).apply([TextDelta("one two "), TextDelta("three four five"), Finish()])
    assert "".join(e.text for e in out if isinstance(e, TextDelta)) == "one two three"
    assert out[-1] == Finish("length")
