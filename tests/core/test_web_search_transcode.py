"""Search and citation events through the three accumulators (pure): Responses `web_search_call`
items and `url_citation` annotations, chat `annotations`, Messages server tool blocks and
`citations`, streamed and collected alike."""

from __future__ import annotations

from typing import Any

from core.events import Citation, Finish, ReasoningDelta, SearchResults, ServerToolUse, TextDelta, Usage
from core.transcode.anthropic import MessagesState
from core.transcode.openai_chat import ChatCompletionState
from core.transcode.responses import ResponsesState

A, B = "https://a.test/x", "https://b.test/y"
EVENTS = [
    ReasoningDelta("thinking"),
    ServerToolUse("web_search", {"query": "tides"}),
    SearchResults(((A, "Alpha"), (B, "Beta"))),
    TextDelta("Tides rise.[[1]](https://a.test/x)"),
    Citation(1, A, "Alpha"),
    TextDelta(" Moon pulls.[[2]](https://b.test/y) Again[[1]](https://a.test/x)"),
    Citation(2, B, "Beta"),
    Citation(1, A, "Alpha"),
    Usage(3, 4),
    Finish(),
]


def test_responses_search_item_and_annotations() -> None:
    state = ResponsesState("m", reasoning=False, web_search=True, sources=True)
    events = state.start() + state.handle(list(EVENTS))
    body = state.final()
    assert [item["type"] for item in body["output"]] == ["web_search_call", "message"]
    call = body["output"][0]
    assert call["status"] == "completed" and call["action"] == {
        "type": "search",
        "query": "tides",
        "sources": [{"type": "url", "url": A}, {"type": "url", "url": B}],
    }
    part = body["output"][1]["content"][0]
    spans = [part["text"][a["start_index"] : a["end_index"]] for a in part["annotations"]]
    assert spans == [f"[[1]]({A})", f"[[2]]({B})", f"[[1]]({A})"]
    assert [a["title"] for a in part["annotations"]] == ["Alpha", "Beta", "Alpha"]
    kinds = [e["type"] for e in events]
    at = kinds.index("response.output_item.added")
    assert kinds[at : at + 5] == [
        "response.output_item.added",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_item.done",
    ]
    added = [e for e in events if e["type"] == "response.output_text.annotation.added"]
    assert [e["annotation_index"] for e in added] == [0, 1, 2]
    assert [e["annotation"] for e in added] == part["annotations"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


def test_responses_without_the_tool_keep_the_search_as_reasoning() -> None:
    state = ResponsesState("m", reasoning=True)
    state.start()
    state.handle(list(EVENTS))
    body = state.final()
    assert [item["type"] for item in body["output"]] == ["reasoning", "message"]
    assert "[web_search: tides]" in body["output"][0]["summary"][0]["text"]
    assert len(body["output"][1]["content"][0]["annotations"]) == 3


def test_responses_sources_only_when_asked() -> None:
    state = ResponsesState("m", reasoning=False, web_search=True)
    state.start()
    state.handle(list(EVENTS))
    assert "sources" not in state.final()["output"][0]["action"]


def _chat(collect: bool) -> tuple[ChatCompletionState, list[dict[str, Any]]]:
    state = ChatCompletionState("m", reasoning=False, collect=collect)
    return state, state.handle(list(EVENTS))


def test_chat_annotations_streamed_and_collected() -> None:
    state, _ = _chat(collect=True)
    message = state.final()["choices"][0]["message"]
    spans = [
        message["content"][a["url_citation"]["start_index"] : a["url_citation"]["end_index"]]
        for a in message["annotations"]
    ]
    assert spans == [f"[[1]]({A})", f"[[2]]({B})", f"[[1]]({A})"]
    assert all(a["type"] == "url_citation" for a in message["annotations"])
    _, chunks = _chat(collect=False)
    streamed = [a for c in chunks for ch in c.get("choices", ()) for a in ch["delta"].get("annotations", ())]
    assert streamed == message["annotations"]


def _message(web_search: bool) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    state = MessagesState("m", thinking=False, web_search=web_search)
    events = state.start() + state.handle(list(EVENTS))
    return state.final(), events


def test_messages_server_tool_blocks_and_citations() -> None:
    message, events = _message(web_search=True)
    kinds = [b["type"] for b in message["content"]]
    assert kinds == ["server_tool_use", "web_search_tool_result", "text"]
    use, result, text = message["content"]
    assert use["name"] == "web_search" and use["input"] == {"query": "tides"}
    assert result["tool_use_id"] == use["id"]
    assert [(r["url"], r["title"]) for r in result["content"]] == [(A, "Alpha"), (B, "Beta")]
    assert [c["url"] for c in text["citations"]] == [A, B, A]
    assert [c["cited_text"] for c in text["citations"]] == ["Tides rise.", "Moon pulls.", "Again"]
    assert message["usage"]["server_tool_use"] == {"web_search_requests": 1}
    deltas = [d["delta"]["type"] for name, d in events if name == "content_block_delta"]
    assert deltas.count("citations_delta") == 3 and "input_json_delta" in deltas
    indexes = [d["index"] for name, d in events if name == "content_block_start"]
    assert indexes == [0, 1, 2]


def test_messages_without_the_tool_have_no_server_blocks() -> None:
    message, _ = _message(web_search=False)
    assert [b["type"] for b in message["content"]] == ["text"]
    assert "citations" not in message["content"][0] and "server_tool_use" not in message["usage"]


def test_messages_search_without_results_still_gets_its_result_block() -> None:
    state = MessagesState("m", web_search=True)
    state.start()
    state.handle([ServerToolUse("web_search", {"q": "x"}), TextDelta("hi"), Finish()])
    content = state.final()["content"]
    assert [b["type"] for b in content] == ["server_tool_use", "text", "web_search_tool_result"]
    assert content[2]["content"] == [] and content[2]["tool_use_id"] == content[0]["id"]
