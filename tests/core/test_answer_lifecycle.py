"""The lifecycle the three dialects share (core.transcode.answer): server tool use, images and
failures read the same in chat completions, Responses and Messages, each in its own shapes."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import Overloaded
from core.events import Event, Finish, ImageOut, ReasoningDelta, ServerToolUse, TextDelta, ToolCall
from core.transcode.answer import ARGUMENT_PIECE, Accumulator
from core.transcode.anthropic import MessagesState
from core.transcode.openai_chat import ChatCompletionState
from core.transcode.responses import ResponsesState


def chat(**kw: Any) -> ChatCompletionState:
    return ChatCompletionState("m", collect=True, **kw)


def messages(**kw: Any) -> MessagesState:
    return MessagesState("m", thinking=kw.pop("reasoning", True), **kw)


def responses(**kw: Any) -> ResponsesState:
    return ResponsesState("m", **kw)


DIALECTS = {"chat": chat, "messages": messages, "responses": responses}


def texts(dialect: str, body: dict[str, Any]) -> tuple[str, str]:
    """(answer text, reasoning text) of a final body."""
    if dialect == "chat":
        message = body["choices"][0]["message"]
        return message["content"] or "", message.get("reasoning_content", "")
    if dialect == "messages":
        blocks = body["content"]
        return (
            "".join(b["text"] for b in blocks if b["type"] == "text"),
            "".join(b["thinking"] for b in blocks if b["type"] == "thinking"),
        )
    items = body["output"]
    return (
        "".join(p["text"] for i in items if i["type"] == "message" for p in i["content"]),
        "".join(p["text"] for i in items if i["type"] == "reasoning" for p in i["summary"]),
    )


def answer(state: Accumulator[Any], events: list[Event]) -> dict[str, Any]:
    state.start()
    state.handle(events)
    assert state.ended
    return state.final()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_server_tools_are_reasoning_lines_naming_what_they_looked_for(dialect: str) -> None:
    events: list[Event] = [
        ReasoningDelta("Looking."),
        ServerToolUse("image_search", {"image_description": "a red fox"}),
        ServerToolUse("browse_page", {"url": "https://a.test"}),
        ServerToolUse("code_execution", {}),
        TextDelta("Done."),
        Finish(),
    ]
    text, reasoning = texts(dialect, answer(DIALECTS[dialect](), events))
    assert (
        reasoning
        == "Looking.\n[image_search: a red fox]\n\n[browse_page: https://a.test]\n\n[code_execution]\n"
    )
    assert text == "Done."


@pytest.mark.parametrize("dialect", DIALECTS)
def test_hidden_reasoning_hides_server_tools_too(dialect: str) -> None:
    events: list[Event] = [ServerToolUse("web_search", {"query": "q"}), TextDelta("a"), Finish()]
    assert texts(dialect, answer(DIALECTS[dialect](reasoning=False), events)) == ("a", "")


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("image_format", "shown"), [("url", "https://a/x.jpg"), ("markdown", "![image](https://a/x.jpg)")]
)
def test_a_final_image_is_a_paragraph_of_its_own(dialect: str, image_format: str, shown: str) -> None:
    events: list[Event] = [
        TextDelta("Here:"),
        ImageOut("https://a/p.jpg", progress=50, final=False),
        ImageOut("https://a/m.jpg", moderated=True),
        ImageOut("https://a/x.jpg"),
        TextDelta("Enjoy."),
        Finish(),
    ]
    text, _ = texts(dialect, answer(DIALECTS[dialect](image_format=image_format), events))
    assert text == f"Here:\n\n{shown}\n\nEnjoy."


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_failure_ends_the_stream_and_is_raised_by_final(dialect: str) -> None:
    state = DIALECTS[dialect]()
    state.start()
    state.handle([TextDelta("par")])
    assert not state.ended
    out = state.fail(Overloaded("busy"))
    assert out and state.ended
    with pytest.raises(Overloaded):
        state.final()


def test_tool_arguments_stream_in_the_same_pieces_in_responses_and_messages() -> None:
    args = '{"note":"' + "x" * 70 + '"}'
    call = ToolCall("call_1", "f", args)
    r = ResponsesState("m")
    r_pieces = [e["delta"] for e in r.handle([call]) if e["type"] == "response.function_call_arguments.delta"]
    m = MessagesState("m")
    m_pieces = [
        d["delta"]["partial_json"]
        for name, d in m.handle([call])
        if name == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
    ]
    assert r_pieces == m_pieces and "".join(m_pieces) == args
    assert [len(p) for p in m_pieces[:-1]] == [ARGUMENT_PIECE] * (len(m_pieces) - 1)
