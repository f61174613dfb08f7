"""OpenAI Responses: core events -> the streamed events and the response object, one accumulator.

The stream follows the official event reference, each event with its `sequence_number`:

    response.created, response.in_progress
    reasoning item:  output_item.added, reasoning_summary_part.added,
                     reasoning_summary_text.delta*, reasoning_summary_text.done,
                     reasoning_summary_part.done, output_item.done
    message item:    output_item.added, content_part.added, output_text.delta*,
                     output_text.done, content_part.done, output_item.done
    function call:   output_item.added, function_call_arguments.delta*,
                     function_call_arguments.done, output_item.done
    web search:      output_item.added, web_search_call.in_progress, web_search_call.searching,
                     web_search_call.completed, output_item.done (when the client offered it)
    response.completed | response.incomplete (max_output_tokens) | error + response.failed

Items never overlap: one is closed before the next opens, so output indexes are dense and each
`done` matches its `added` (the SDK's accumulator checks both). No `[DONE]` line: the terminal
lifecycle event ends the stream. A citation in the answer is an `url_citation` annotation on the
span of its mark (`response.output_text.annotation.added`), whatever tools were offered.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from core.errors import GatewayError, RateLimited
from core.events import Citation, Finish, ToolCall, Usage
from core.transcode.answer import Accumulator, pieces
from core.transcode.citations import CitationSpans


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


_TOKEN = 48  # hex digits of a response id after "resp_"
INPUT_ITEMS = 0x8000  # item numbers from here on name input items


def item_id(response_id: str, prefix: str, n: int) -> str:
    """The id of item `n` of a response: it names the response, so an `item_reference` to it can
    be found in the store (`response_of`). Random when the response id has another form."""
    token = response_id.removeprefix("resp_")
    if len(token) != _TOKEN:
        return new_id(prefix)
    return f"{prefix}_{token}{n:04x}"


def response_of(item: str) -> str | None:
    """The response an item id made by `item_id` belongs to, or None."""
    _, _, rest = item.partition("_")
    token = rest[:_TOKEN]
    if len(rest) != _TOKEN + 4 or not all(c in "0123456789abcdef" for c in rest):
        return None
    return "resp_" + token


def usage_body(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


class ResponsesState(Accumulator[dict[str, Any]]):
    """`start()` then `handle(events)` -> stream events; `final()` -> the response object.

    `echo` holds the request fields a response repeats (instructions, tools, tool_choice,
    temperature, metadata ...).
    """

    def __init__(
        self,
        model: str,
        *,
        echo: dict[str, Any] | None = None,
        reasoning: bool = True,
        image_format: str = "url",
        id: str | None = None,
        created_at: int | None = None,
        seal: Callable[[str, str], str] | None = None,
        web_search: bool = False,
        sources: bool = False,
    ) -> None:
        # web_search: the client offered web search, so searches are web_search_call items
        super().__init__(
            model, id or new_id("resp"), reasoning=reasoning, image_format=image_format, web_search=web_search
        )
        self.sources = sources  # include web_search_call.action.sources
        self._items = 0
        self.seal = seal  # include reasoning.encrypted_content: (item id, text) -> token
        self.created_at = created_at or int(time.time())
        self.echo = echo or {}
        self.seq = 0
        self.output: list[dict[str, Any]] = []  # completed items
        self.open: dict[str, Any] | None = None  # the item being streamed
        self.status = "in_progress"
        self.incomplete: str | None = None

    def _new_id(self, prefix: str) -> str:
        self._items += 1
        return item_id(self.id, prefix, self._items)

    # -- the response object

    def response(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": self.status,
            "background": False,
            "error": None,
            "incomplete_details": {"reason": self.incomplete} if self.incomplete else None,
            "instructions": None,
            "max_output_tokens": None,
            "max_tool_calls": None,
            "model": self.model,
            "output": list(self.output) if self.status != "in_progress" else [],
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": False,
            "temperature": None,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": None,
            "truncation": "disabled",
            "usage": usage_body(self.usage) if self.status != "in_progress" else None,
            "user": None,
            "metadata": {},
        }
        body.update(self.echo)
        if self.status in ("completed", "incomplete"):
            body["completed_at"] = int(time.time())
        if self.error is not None:
            code = "rate_limit_exceeded" if isinstance(self.error, RateLimited) else "server_error"
            body["error"] = {"code": code, "message": self.error.message}
        return body

    def _body(self) -> dict[str, Any]:
        return self.response()

    # -- events

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return event

    def start(self) -> list[dict[str, Any]]:
        return [
            self._event("response.created", response=self.response()),
            self._event("response.in_progress", response=self.response()),
        ]

    def _finish(self, finish: Finish, out: list[dict[str, Any]]) -> None:
        self._close(out, "incomplete" if finish.reason == "length" else "completed")
        if finish.reason == "length":
            self.status, self.incomplete = "incomplete", "max_output_tokens"
            out.append(self._event("response.incomplete", response=self.response()))
        else:
            self.status = "completed"
            out.append(self._event("response.completed", response=self.response()))

    def _fail(self, error: GatewayError, out: list[dict[str, Any]]) -> None:
        self._close(out, "incomplete")
        self.status = "failed"
        code = "rate_limit_exceeded" if isinstance(error, RateLimited) else "server_error"
        out.append(self._event("error", code=code, message=error.message, param=None))
        out.append(self._event("response.failed", response=self.response()))

    def _results(self, results: tuple[tuple[str, str], ...], out: list[dict[str, Any]]) -> None:
        if self.open is not None and self.open["type"] == "web_search_call" and self.sources:
            sources = self.open["action"].setdefault("sources", [])
            sources += [{"type": "url", "url": url} for url, _ in results]

    def _index(self) -> int:
        return len(self.output)

    def _item_event(self, kind: str, **fields: Any) -> dict[str, Any]:
        """An event about the open item (it is the next in `output`)."""
        assert self.open is not None
        return self._event(kind, item_id=self.open["id"], output_index=len(self.output), **fields)

    def _open(self, item: dict[str, Any], out: list[dict[str, Any]]) -> None:
        self.open = item
        out.append(self._event("response.output_item.added", output_index=self._index(), item=dict(item)))

    def _close(self, out: list[dict[str, Any]], status: str = "completed") -> None:
        item = self.open
        if item is None:
            return
        index = self._index()
        if item["type"] == "reasoning":
            text = item.pop("_text")
            part = {"type": "summary_text", "text": text}
            out.append(self._item_event("response.reasoning_summary_text.done", summary_index=0, text=text))
            out.append(self._item_event("response.reasoning_summary_part.done", summary_index=0, part=part))
            item["summary"] = [part]
            if self.seal is not None:
                item["encrypted_content"] = self.seal(item["id"], text)
        elif item["type"] == "web_search_call":
            out.append(self._item_event("response.web_search_call.completed"))
        elif item["type"] == "message":
            text = item.pop("_text")
            item.pop("_spans")
            annotations = item.pop("_annotations")
            part = {"type": "output_text", "annotations": annotations, "logprobs": [], "text": text}
            out.append(self._item_event("response.output_text.done", content_index=0, text=text, logprobs=[]))
            out.append(self._item_event("response.content_part.done", content_index=0, part=part))
            item["content"] = [part]
        item["status"] = status
        out.append(self._event("response.output_item.done", output_index=index, item=item))
        self.output.append(item)
        self.open = None

    def _reasoning(self, text: str, out: list[dict[str, Any]]) -> None:
        if not text:
            return
        if self.open is None or self.open["type"] != "reasoning":
            self._close(out)
            self._open({"id": self._new_id("rs"), "type": "reasoning", "summary": []}, out)
            assert self.open is not None
            self.open["_text"] = ""
            out.append(
                self._item_event(
                    "response.reasoning_summary_part.added",
                    summary_index=0,
                    part={"type": "summary_text", "text": ""},
                )
            )
        item = self.open
        assert item is not None
        item["_text"] += text
        out.append(self._item_event("response.reasoning_summary_text.delta", summary_index=0, delta=text))

    def _text(self, text: str, out: list[dict[str, Any]]) -> None:
        if not text:
            return
        if self.open is None or self.open["type"] != "message":
            self._close(out)
            item: dict[str, Any] = {
                "id": self._new_id("msg"),
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            self._open(item, out)
            item["_text"] = ""
            item["_spans"] = CitationSpans()
            item["_annotations"] = []
            out.append(
                self._item_event(
                    "response.content_part.added",
                    content_index=0,
                    part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
                )
            )
        current = self.open
        assert current is not None
        current["_text"] += text
        current["_spans"].add(text)
        self.ends_newline = text.endswith("\n")
        out.append(self._item_event("response.output_text.delta", content_index=0, delta=text, logprobs=[]))

    def _call(self, call: ToolCall, out: list[dict[str, Any]]) -> None:
        """A `function_call` item, or for a free-form tool a `custom_tool_call` item, with the
        text streamed in pieces (`function_call_arguments.*` / `custom_tool_call_input.*`)."""
        self._close(out)
        if call.kind == "tool_search":
            self._search_call(call, out)
            return
        if call.custom:
            item: dict[str, Any] = {"id": self._new_id("ctc"), "type": "custom_tool_call", "call_id": call.id}
            field, events = "input", "response.custom_tool_call_input"
        else:
            item = {
                "id": self._new_id("fc"),
                "type": "function_call",
                "status": "in_progress",
                "call_id": call.id,
            }
            field, events = "arguments", "response.function_call_arguments"
        if call.namespace:
            item["namespace"] = call.namespace
        item.update({"name": call.name, field: ""})
        self._open(item, out)
        text = call.arguments
        for piece in pieces(text):
            out.append(self._item_event(events + ".delta", delta=piece))
        done = {field: text} if call.custom else {"name": call.name, field: text}
        out.append(self._item_event(events + ".done", **done))
        item[field] = text
        self._close(out)

    def _search_call(self, call: ToolCall, out: list[dict[str, Any]]) -> None:
        """A client-run tool search: a `tool_search_call` item (no delta events exist for it)."""
        item: dict[str, Any] = {
            "id": self._new_id("tsc"),
            "type": "tool_search_call",
            "status": "in_progress",
            "call_id": call.id,
            "execution": "client",
            "arguments": json.loads(call.arguments),
        }
        self._open(item, out)
        self._close(out)

    def _search(self, query: str, out: list[dict[str, Any]]) -> None:
        """The upstream's search as a `web_search_call` item, open until the next item (its
        results, if asked for, join `action.sources`)."""
        self._close(out)
        item: dict[str, Any] = {
            "id": self._new_id("ws"),
            "type": "web_search_call",
            "status": "in_progress",
            "action": {"type": "search", "query": query},
        }
        self._open(item, out)
        for kind in ("response.web_search_call.in_progress", "response.web_search_call.searching"):
            out.append(self._item_event(kind))

    def _cite(self, citation: Citation, out: list[dict[str, Any]]) -> None:
        item = self.open
        if item is None or item["type"] != "message":
            return
        span = item["_spans"].span(citation)
        if span is None:
            return
        annotation = {
            "type": "url_citation",
            "start_index": span[0],
            "end_index": span[1],
            "url": citation.url,
            "title": citation.title or citation.url,
        }
        item["_annotations"].append(annotation)
        out.append(
            self._item_event(
                "response.output_text.annotation.added",
                content_index=0,
                annotation_index=len(item["_annotations"]) - 1,
                annotation=annotation,
            )
        )
