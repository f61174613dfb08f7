"""Anthropic Messages: core events -> the streamed events and the message object, one accumulator.

    message_start, ping
    thinking block:  content_block_start {thinking, signature ""}, thinking_delta*, signature_delta,
                     content_block_stop
    text block:      content_block_start {text}, text_delta*, content_block_stop
    tool_use block:  content_block_start {tool_use, input {}}, input_json_delta*, content_block_stop
    web search (when the client offered `web_search_*`):
                     server_tool_use block (as tool_use), web_search_tool_result block (start, stop),
                     and on the text that cites: citations_delta {web_search_result_location}
    message_delta {stop_reason, stop_sequence} + usage, message_stop
    a failure after the start: event `error` {type: error, error: {type, message}}, and the end

Blocks never overlap: one stops before the next starts. The upstream signs nothing, so the
thinking signature is an opaque digest of the thinking text: clients that send thinking blocks
back get them accepted (and skipped), never verified.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

from core.errors import GatewayError
from core.events import Citation, Finish, ToolCall
from core.transcode.answer import Accumulator, pieces
from core.transcode.citations import mark

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
CITED_TEXT = 150  # characters of the citing text kept in `cited_text`


def _opaque(*parts: str) -> str:
    """An opaque token (Anthropic's encrypted fields): the gateway never reads it back."""
    return base64.b64encode("\x1f".join(parts).encode()).decode("ascii")


def message_id() -> str:
    return "msg_01" + secrets.token_hex(12)


def signature(thinking: str) -> str:
    return base64.b64encode(b"grokgate:" + hashlib.sha256(thinking.encode()).digest()).decode("ascii")


class MessagesState(Accumulator[tuple[str, dict[str, Any]]]):
    """`start()` then `handle(events)` -> (event name, data) pairs; `final()` -> the message."""

    def __init__(
        self,
        model: str,
        *,
        input_tokens: int = 0,
        thinking: bool = False,
        omit_thinking: bool = False,
        image_format: str = "url",
        id: str | None = None,
        web_search: bool = False,
    ) -> None:
        # web_search: the client offered web_search_*, so searches are server tool blocks
        super().__init__(
            model, id or message_id(), reasoning=thinking, image_format=image_format, web_search=web_search
        )
        self.searches = 0
        self.pending_search: str | None = None  # a server_tool_use whose result block is due
        self._cited_block: dict[str, Any] | None = None
        self._cite_from = 0
        self.input_tokens = input_tokens
        self.omit_thinking = omit_thinking  # `thinking.display: "omitted"`: blocks without their text
        self.content: list[dict[str, Any]] = []  # completed blocks
        self.open: dict[str, Any] | None = None
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None

    def _usage(self) -> dict[str, Any]:
        output = self.usage.completion_tokens if self.usage else 0
        inputs = self.usage.prompt_tokens if self.usage else self.input_tokens
        usage: dict[str, Any] = {
            "input_tokens": inputs,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output,
        }
        if self.searches:
            usage["server_tool_use"] = {"web_search_requests": self.searches}
        return usage

    def message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": list(self.content),
            "stop_reason": self.stop_reason,
            "stop_sequence": self.stop_sequence,
            "usage": self._usage(),
        }

    def _body(self) -> dict[str, Any]:
        return self.message()

    def start(self) -> list[tuple[str, dict[str, Any]]]:
        head = {**self.message(), "content": []}
        head["usage"] = {**head["usage"], "output_tokens": 1}
        return [("message_start", {"type": "message_start", "message": head}), ("ping", {"type": "ping"})]

    def _finish(self, finish: Finish, out: list[tuple[str, dict[str, Any]]]) -> None:
        self._close(out)
        if self.pending_search is not None:
            self._search_result((), out)
        if finish.stop_sequence is not None:
            self.stop_reason, self.stop_sequence = "stop_sequence", finish.stop_sequence
        else:
            self.stop_reason = STOP_REASONS.get(finish.reason, "end_turn")
        delta = {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence}
        out.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": self._usage()}))
        out.append(("message_stop", {"type": "message_stop"}))

    def _fail(self, error: GatewayError, out: list[tuple[str, dict[str, Any]]]) -> None:
        out.append(("error", error.anthropic_body()))

    def _index(self) -> int:
        return len(self.content)

    def _begin(self, block: dict[str, Any], out: list[tuple[str, dict[str, Any]]]) -> None:
        self.open = block
        start = {"type": "content_block_start", "index": self._index(), "content_block": dict(block)}
        out.append(("content_block_start", start))

    def _delta(self, delta: dict[str, Any], out: list[tuple[str, dict[str, Any]]]) -> None:
        out.append(
            ("content_block_delta", {"type": "content_block_delta", "index": self._index(), "delta": delta})
        )

    def _close(self, out: list[tuple[str, dict[str, Any]]]) -> None:
        block = self.open
        if block is None:
            return
        if block["type"] == "thinking":
            block["signature"] = signature(block["thinking"])
            self._delta({"type": "signature_delta", "signature": block["signature"]}, out)
        out.append(("content_block_stop", {"type": "content_block_stop", "index": self._index()}))
        self.content.append(block)
        self.open = None

    def _reasoning(self, text: str, out: list[tuple[str, dict[str, Any]]]) -> None:
        if not text:
            return
        if self.open is None or self.open["type"] != "thinking":
            self._close(out)
            self._begin({"type": "thinking", "thinking": "", "signature": ""}, out)
        assert self.open is not None
        if self.omit_thinking:
            return
        self.open["thinking"] += text
        self._delta({"type": "thinking_delta", "thinking": text}, out)

    def _text(self, text: str, out: list[tuple[str, dict[str, Any]]]) -> None:
        if not text:
            return
        if self.open is None or self.open["type"] != "text":
            self._close(out)
            self._begin({"type": "text", "text": ""}, out)
        assert self.open is not None
        self.open["text"] += text
        self.ends_newline = text.endswith("\n")
        self._delta({"type": "text_delta", "text": text}, out)

    def _call(self, call: ToolCall, out: list[tuple[str, dict[str, Any]]]) -> None:
        self._close(out)
        self._begin({"type": "tool_use", "id": call.id, "name": call.name, "input": {}}, out)
        for piece in pieces(call.arguments):
            self._delta({"type": "input_json_delta", "partial_json": piece}, out)
        assert self.open is not None
        self.open["input"] = json.loads(call.arguments)
        self._close(out)

    def _search(self, query: str, out: list[tuple[str, dict[str, Any]]]) -> None:
        """The upstream's search as a `server_tool_use` block; its `web_search_tool_result` follows
        when the results arrive (empty if none did by the next search or the end)."""
        self._close(out)
        if self.pending_search is not None:
            self._search_result((), out)
        block_id = "srvtoolu_01" + secrets.token_hex(12)
        self._begin({"type": "server_tool_use", "id": block_id, "name": "web_search", "input": {}}, out)
        arguments = json.dumps({"query": query}, ensure_ascii=False)
        self._delta({"type": "input_json_delta", "partial_json": arguments}, out)
        assert self.open is not None
        self.open["input"] = {"query": query}
        self._close(out)
        self.searches += 1
        self.pending_search = block_id

    def _results(self, results: tuple[tuple[str, str], ...], out: list[tuple[str, dict[str, Any]]]) -> None:
        if self.pending_search is not None:
            self._search_result(results, out)

    def _search_result(
        self, results: tuple[tuple[str, str], ...], out: list[tuple[str, dict[str, Any]]]
    ) -> None:
        self._close(out)
        content = [
            {
                "type": "web_search_result",
                "url": url,
                "title": title or url,
                "encrypted_content": _opaque("grokgate", url),
                "page_age": None,
            }
            for url, title in results
        ]
        block = {"type": "web_search_tool_result", "tool_use_id": self.pending_search, "content": content}
        self.pending_search = None
        self._begin(block, out)
        self._close(out)

    def _cite(self, citation: Citation, out: list[tuple[str, dict[str, Any]]]) -> None:
        block = self.open
        if not self.web_search or block is None or block["type"] != "text":
            return
        text = block["text"]
        if block is not self._cited_block:  # marks are found in order, each after the one before
            self._cited_block, self._cite_from = block, 0
        cue = mark(citation)
        at = text.find(cue, self._cite_from)
        if at < 0:
            at = len(text)
        before = text[self._cite_from : at].rstrip()
        self._cite_from = min(at + len(cue), len(text))
        sentence = max(before.rfind(". ") + 2 if ". " in before else 0, before.rfind("\n") + 1)
        cited = before[sentence:][-CITED_TEXT:].strip()  # the sentence the mark ends
        entry = {
            "type": "web_search_result_location",
            "url": citation.url,
            "title": citation.title or citation.url,
            "encrypted_index": _opaque("grokgate", citation.url, str(citation.index)),
            "cited_text": cited,
        }
        block.setdefault("citations", []).append(entry)
        self._delta({"type": "citations_delta", "citation": entry}, out)
