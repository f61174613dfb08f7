"""Anthropic Messages requests -> one normalised `ChatRequest` (system, content blocks, tools).

Content blocks: `text`; `image` (base64 or url); `document` (base64 PDF, plain text, url, or
inline content); `tool_use` in assistant turns, rendered into the history in the markup the
tool prompt asks for; `tool_result` (with `is_error`, string or block content, and mixed with
other blocks in one user turn: each keeps its place); `thinking` and `redacted_thinking` are
skipped (the upstream's thinking is never replayed). `role: "system"` messages (Claude Code sends
its environment that way) join the system part, in order. `max_tokens` is required, as Anthropic
requires it, and enforced on the visible answer; `thinking.budget_tokens` is checked the way
Anthropic checks it but cannot be passed upstream; `thinking` and `output_config.effort` choose
the mode of an `auto` model (`upstream_model`); `context_management` edits are applied to the
replayed history where they can be. Tools: `core.transcode.anthropic_tools`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from core.catalog import Capability, Model, require_capability, with_mode
from core.errors import InvalidRequest
from core.transcode.anthropic_tools import anthropic_tool_spec, is_web_search
from core.transcode.fields import RequestModel
from core.transcode.normalize import (
    Attachment,
    Block,
    ChatRequest,
    attachment_from_base64,
    attachment_from_url,
    check_attachments,
    flatten,
)
from core.transcode.tools import render_calls, result_role
from core.transcode.usage import estimate_tokens


class ThinkingParam(RequestModel):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = Field(default=None, ge=1024)
    display: Literal["summarized", "omitted", "updates"] | None = None


class OutputConfig(RequestModel):
    """`output_config`: `effort` picks the upstream mode of an `auto` model (see `upstream_model`);
    `format` and `task_budget` are accepted (no upstream knob)."""

    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    format: dict[str, Any] | None = None
    task_budget: dict[str, Any] | None = None


class ContextEdit(RequestModel):
    """One `context_management.edits` entry (`clear_tool_uses_*`, `clear_thinking_*`)."""

    type: str
    trigger: dict[str, Any] | None = None
    keep: dict[str, Any] | Literal["all"] | None = None
    clear_at_least: dict[str, Any] | None = None
    exclude_tools: list[str] | None = None
    clear_tool_inputs: bool | list[str] | None = None


class ContextManagement(RequestModel):
    edits: list[ContextEdit] = Field(default_factory=list)


class Metadata(RequestModel):
    user_id: str | None = None


class MessagesBase(RequestModel):
    model: str
    messages: list[Any] = Field(min_length=1)
    system: str | list[Any] | None = None
    thinking: ThinkingParam | None = None
    tools: list[Any] | None = None
    tool_choice: dict[str, Any] | None = None
    output_config: OutputConfig | None = None
    context_management: ContextManagement | None = None
    mcp_servers: list[Any] | None = None
    cache_control: dict[str, Any] | None = None


class MessagesRequest(MessagesBase):
    """The body of `POST /v1/messages`. Known fields are type-checked strictly (`max_tokens: true`
    and `stream: 1` are 400s); unknown ones follow the field policy (`core.transcode.fields`);
    `docs/compatibility.md` says what each one does."""

    max_tokens: int = Field(ge=1)
    stream: bool | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    metadata: Metadata | None = None
    service_tier: Literal["auto", "standard_only"] | None = None
    container: str | dict[str, Any] | None = None
    inference_geo: str | None = None
    speed: str | None = None


class CountTokensRequest(MessagesBase):
    """The body of `POST /v1/messages/count_tokens`."""


def _bad(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param)


def _text(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise _bad(param, "must be a string")
    return value


def _blocks(content: list[Any], param: str) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """Each content block with where it sits and its type; a block that is not an object is a 400."""
    for j, block in enumerate(content):
        where = f"{param}.{j}"
        if not isinstance(block, dict):
            raise _bad(where, "must be an object")
        yield where, block.get("type"), block


class _History:
    """Blocks of one request: texts of a turn gathered, tool results and earlier calls in place."""

    def __init__(self) -> None:
        self.atts: list[Attachment] = []
        self.blocks: list[Block] = []
        self.names: dict[str, str] = {}  # tool_use id -> tool name, for the results that follow
        self.system: list[str] = []  # `role: "system"` messages, in order
        self.results: list[tuple[int, str]] = []  # (index in blocks, tool name) of each tool result

    def source(self, block: dict[str, Any], param: str, *, document: bool) -> str:
        source = block.get("source")
        if not isinstance(source, dict):
            raise _bad(f"{param}.source", "Field required")
        kind = source.get("type")
        if kind == "base64":
            mime = source.get("media_type") or ("application/pdf" if document else "")
            data = _text(source.get("data"), f"{param}.source.data")
            url = f"data:{mime};base64,{data}"
            self.atts.append(attachment_from_base64(url, block.get("title"), f"{param}.source.data"))
        elif kind == "url":
            url = _text(source.get("url"), f"{param}.source.url")
            self.atts.append(attachment_from_url(url, f"{param}.source.url"))
        elif kind == "text" and document:
            title = block.get("title")
            body = _text(source.get("data"), f"{param}.source.data")
            return f"[document: {title}]\n{body}" if title else body
        elif kind == "content" and document:
            return self.text(source.get("content"), f"{param}.source.content")
        elif kind == "file":
            raise _bad(f"{param}.source", "file ids need Anthropic's Files API; send base64 data or a url")
        else:
            raise _bad(f"{param}.source.type", f"{kind!r} is not supported")
        return ""

    def plain(self, kind: Any, block: dict[str, Any], where: str) -> str | None:
        """A text, image or document block as text (any turn may hold them); None for other kinds."""
        if kind == "text":
            return _text(block.get("text"), f"{where}.text")
        if kind in ("image", "document"):
            return self.source(block, where, document=kind == "document")
        return None

    def text(self, content: Any, param: str) -> str:
        """Plain content (system, a tool result, a document): text, images and documents only."""
        if isinstance(content, str):
            return content
        if not isinstance(content, list):
            raise _bad(param, "must be a string or an array of content blocks")
        texts: list[str] = []
        for where, kind, block in _blocks(content, param):
            plain = self.plain(kind, block, where)
            if plain is not None:
                texts.append(plain)
            elif kind == "tool_reference":  # a tool search result: the tool it found
                texts.append(f"[tool available: {_text(block.get('tool_name'), f'{where}.tool_name')}]")
            elif kind == "search_result":
                title = block.get("title") or block.get("source") or ""
                texts.append(
                    f"[search result: {title}]\n" + self.text(block.get("content") or "", f"{where}.content")
                )
            else:
                raise _bad(f"{where}.type", f"{kind!r} blocks are not supported here")
        return "\n".join(t for t in texts if t)

    def turn(self, role: str, content: Any, param: str) -> None:
        if isinstance(content, str):
            self.blocks.append(Block(role, content))
            return
        if not isinstance(content, list):
            raise _bad(param, "must be a string or an array of content blocks")
        texts: list[str] = []
        calls: list[tuple[str, str]] = []

        def push() -> None:
            if texts:
                self.blocks.append(Block(role, "\n".join(t for t in texts if t)))
                texts.clear()

        for where, kind, block in _blocks(content, param):
            plain = self.plain(kind, block, where)
            if plain is not None:
                texts.append(plain)
            elif kind in ("thinking", "redacted_thinking") and role == "assistant":
                continue
            elif kind in ("server_tool_use", "web_search_tool_result") and role == "assistant":
                continue  # the upstream searched; the answer that followed carries what it found
            elif kind == "tool_use" and role == "assistant":
                name = _text(block.get("name"), f"{where}.name")
                self.names[str(block.get("id"))] = name
                calls.append((name, json.dumps(block.get("input") or {}, ensure_ascii=False)))
            elif kind == "tool_result" and role == "user":
                push()
                call_id = _text(block.get("tool_use_id"), f"{where}.tool_use_id")
                body = self.text(block.get("content") or "", f"{where}.content")
                name = self.names.get(call_id, "")
                role_name = result_role(call_id, name, is_error=bool(block.get("is_error")))
                self.results.append((len(self.blocks), name))
                self.blocks.append(Block(role_name, body or "(empty)"))
            else:
                raise _bad(f"{where}.type", f"{kind!r} blocks are not supported in {role} turns")
        push()
        if calls:
            self.blocks.append(Block("assistant", render_calls(calls)))

    def messages(self, messages: list[Any]) -> None:
        for i, message in enumerate(messages):
            param = f"messages.{i}"
            if not isinstance(message, dict):
                raise _bad(param, "must be an object")
            role = message.get("role")
            if role == "system":  # Claude Code's mid-conversation context: joins the system part
                self.system.append(self.text(message.get("content") or "", f"{param}.content"))
                continue
            if role not in ("user", "assistant"):
                raise _bad(f"{param}.role", f"must be 'user', 'assistant' or 'system' (got {role!r})")
            self.turn(role, message.get("content"), f"{param}.content")

    def clear_tool_uses(self, edit: ContextEdit, param: str, ignored: list[str]) -> None:
        """`clear_tool_uses_*`: past the trigger (input tokens, estimated), the results of all but the
        last `keep` tool uses (default 3; `exclude_tools` kept) are replaced by a placeholder."""
        trigger = _edit_value(edit.trigger, "input_tokens", f"{param}.trigger", CLEAR_TRIGGER)
        keep = _edit_value(edit.keep, "tool_uses", f"{param}.keep", CLEAR_KEEP)
        if edit.clear_tool_inputs:
            ignored.append(f"{param}.clear_tool_inputs")  # calls are replayed whole
        if estimate_tokens(flatten(self.blocks)) < trigger:
            return
        excluded = set(edit.exclude_tools or ())
        clearable = [i for i, name in self.results if name not in excluded]
        for i in clearable[: max(len(clearable) - keep, 0)]:
            self.blocks[i] = Block(self.blocks[i].role, CLEARED)


CLEAR_TRIGGER = 100_000  # Anthropic's defaults for clear_tool_uses: input tokens, tool uses kept
CLEAR_KEEP = 3
CLEARED = "[tool result cleared to save context]"


def _edit_value(value: Any, kind: str, param: str, default: int) -> int:
    if value is None:
        return default
    if not isinstance(value, dict) or value.get("type") != kind or type(value.get("value")) is not int:
        raise _bad(param, f"must be {{'type': '{kind}', 'value': <integer>}}")
    return int(value["value"])


def _manage_context(history: _History, body: MessagesBase, ignored: list[str]) -> None:
    """`context_management.edits`: tool results cleared; thinking is never replayed upstream, so
    `clear_thinking_*` holds whatever it keeps; other edits are reported as ignored."""
    for i, edit in enumerate(body.context_management.edits if body.context_management else ()):
        param = f"context_management.edits.{i}"
        if edit.type.startswith("clear_tool_uses_"):
            history.clear_tool_uses(edit, param, ignored)
        elif not edit.type.startswith("clear_thinking_"):
            ignored.append(f"{param}.type={edit.type}")


def upstream_model(body: MessagesBase) -> Model:
    """The model that serves the request. An `auto` model (the upstream decides how hard to think)
    follows the client's reasoning settings: `thinking.type: disabled` or `output_config.effort: low`
    runs it in `fast` mode, effort `high`, `xhigh` or `max` in `expert`; models named for a mode keep it."""
    model = require_capability(body.model, Capability.CHAT)
    if model.mode != "auto":
        return model
    effort = body.output_config.effort if body.output_config else None
    if (body.thinking is not None and body.thinking.type == "disabled") or effort == "low":
        return with_mode(model, "fast")
    if effort in ("high", "xhigh", "max"):
        return with_mode(model, "expert")
    return model


def normalize_messages(body: MessagesBase, *, max_tokens: int | None = None) -> ChatRequest:
    """Check, then flatten system (the `system` field, then `role: "system"` messages in order),
    tools and messages into one upstream message. What is accepted but not acted on goes into
    `body.ignored`."""
    model = upstream_model(body)
    thinking = body.thinking
    if thinking is not None and thinking.type == "enabled":
        if thinking.budget_tokens is None:
            raise _bad("thinking.enabled.budget_tokens", "Field required")
        if max_tokens is not None and thinking.budget_tokens >= max_tokens:
            raise _bad("max_tokens", "must be greater than thinking.budget_tokens")
    if body.mcp_servers:
        body.ignored.append("mcp_servers")  # remote MCP servers are called by Anthropic's servers
    spec = anthropic_tool_spec(body.tools, body.tool_choice, body.ignored)
    history = _History()
    system = [history.text(body.system or "", "system")]
    history.messages(body.messages)
    if not history.blocks:
        raise _bad("messages", "need at least one user or assistant message")
    _manage_context(history, body, body.ignored)
    head = [Block("system", text) for text in (*system, *history.system) if text]
    if spec is not None and spec.active:
        head.append(Block("system", spec.prompt()))
    history.blocks[:0] = head
    atts = history.atts
    message = flatten(history.blocks)
    if not message.strip() and not atts:
        raise _bad("messages", "hold no text and no attachments")
    check_attachments(atts)
    stop: tuple[str, ...] = ()
    if isinstance(body, MessagesRequest) and body.stop_sequences:
        if any(not s for s in body.stop_sequences):
            raise _bad("stop_sequences", "each stop sequence must be non-empty")
        stop = tuple(body.stop_sequences)
    return ChatRequest(
        model=model,
        message=message,
        attachments=tuple(atts),
        reasoning=model.reasoning and thinking is not None and thinking.type != "disabled",
        max_output_tokens=max_tokens,
        stop=stop,
        tools=spec if spec is not None and spec.active else None,
        web_search=any(is_web_search(t) for t in body.tools or ()),
    )
