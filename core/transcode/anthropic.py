"""Anthropic Messages: core events -> the streamed events and the message object, one accumulator.

    message_start, ping
    thinking block:  content_block_start {thinking, signature ""}, thinking_delta*, signature_delta,
                     content_block_stop
    text block:      content_block_start {text}, text_delta*, content_block_stop
    tool_use block:  content_block_start {tool_use, input {}}, input_json_delta*, content_block_stop
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
from core.events import (
    Event,
    Fault,
    Finish,
    ImageOut,
    ReasoningDelta,
    ServerToolUse,
    TextDelta,
    ToolCall,
    Usage,
)
from core.protocol.render import answer_image, tool_line

ARGUMENT_PIECE = 32
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def message_id() -> str:
    return "msg_01" + secrets.token_hex(12)


def signature(thinking: str) -> str:
    return base64.b64encode(b"grokgate:" + hashlib.sha256(thinking.encode()).digest()).decode("ascii")


class MessagesState:
    """`start()` then `handle(events)` -> (event name, data) pairs; `final()` -> the message."""

    def __init__(
        self,
        model: str,
        *,
        input_tokens: int = 0,
        thinking: bool = False,
        image_format: str = "url",
        id: str | None = None,
    ) -> None:
        self.id = id or message_id()
        self.model = model
        self.input_tokens = input_tokens
        self.show_thinking = thinking
        self.image_format = image_format
        self.content: list[dict[str, Any]] = []  # completed blocks
        self.open: dict[str, Any] | None = None
        self.usage: Usage | None = None
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None
        self.error: GatewayError | None = None
        self.ends_newline = True

    def _usage(self) -> dict[str, Any]:
        output = self.usage.completion_tokens if self.usage else 0
        inputs = self.usage.prompt_tokens if self.usage else self.input_tokens
        return {
            "input_tokens": inputs,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output,
        }

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

    def final(self) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return self.message()

    def start(self) -> list[tuple[str, dict[str, Any]]]:
        head = {**self.message(), "content": []}
        head["usage"] = {**head["usage"], "output_tokens": 1}
        return [("message_start", {"type": "message_start", "message": head}), ("ping", {"type": "ping"})]

    def handle(self, events: list[Event]) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        for event in events:
            if isinstance(event, TextDelta):
                self._text(event.text, out)
            elif isinstance(event, ReasoningDelta):
                if self.show_thinking:
                    self._thinking(event.text, out)
            elif isinstance(event, ServerToolUse):
                if self.show_thinking:
                    self._thinking(tool_line(event.name, event.args), out)
            elif isinstance(event, ImageOut):
                if event.final and not event.moderated:
                    text = answer_image(event.url, self.image_format, after_newline=self.ends_newline)
                    self._text(text, out)
            elif isinstance(event, ToolCall):
                self._tool(event, out)
            elif isinstance(event, Usage):
                self.usage = event
            elif isinstance(event, Finish):
                self._close(out)
                if event.stop_sequence is not None:
                    self.stop_reason, self.stop_sequence = "stop_sequence", event.stop_sequence
                else:
                    self.stop_reason = STOP_REASONS.get(event.reason, "end_turn")
                delta = {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence}
                out.append(
                    ("message_delta", {"type": "message_delta", "delta": delta, "usage": self._usage()})
                )
                out.append(("message_stop", {"type": "message_stop"}))
            elif isinstance(event, Fault):
                self.error = event.error
                out.append(("error", event.error.anthropic_body()))
        return out

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

    def _thinking(self, text: str, out: list[tuple[str, dict[str, Any]]]) -> None:
        if not text:
            return
        if self.open is None or self.open["type"] != "thinking":
            self._close(out)
            self._begin({"type": "thinking", "thinking": "", "signature": ""}, out)
        assert self.open is not None
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

    def _tool(self, call: ToolCall, out: list[tuple[str, dict[str, Any]]]) -> None:
        self._close(out)
        self._begin({"type": "tool_use", "id": call.id, "name": call.name, "input": {}}, out)
        for at in range(0, len(call.arguments), ARGUMENT_PIECE):
            self._delta(
                {"type": "input_json_delta", "partial_json": call.arguments[at : at + ARGUMENT_PIECE]}, out
            )
        assert self.open is not None
        self.open["input"] = json.loads(call.arguments)
        self._close(out)
