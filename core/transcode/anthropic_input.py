"""Anthropic Messages requests -> one normalised `ChatRequest` (system, content blocks, tools).

Content blocks: `text`; `image` (base64 or url); `document` (base64 PDF, plain text, url, or
inline content); `tool_use` in assistant turns, rendered into the history in the markup the
tool prompt asks for; `tool_result` (with `is_error`, string or block content, and mixed with
other blocks in one user turn: each keeps its place); `thinking` and `redacted_thinking` are
skipped (the upstream's thinking is never replayed). `max_tokens` is required, as Anthropic
requires it, and enforced on the visible answer; `thinking.budget_tokens` is checked the way
Anthropic checks it but cannot be passed upstream.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from core.catalog import Capability, require_capability
from core.errors import InvalidRequest
from core.transcode.depth import check_depth
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
from core.transcode.tools import Tool, ToolChoice, ToolSpec, render_calls, result_role


class ThinkingParam(RequestModel):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = Field(default=None, ge=1024)
    display: str | None = None


class MessagesBase(RequestModel):
    model: str
    messages: list[Any] = Field(min_length=1)
    system: str | list[Any] | None = None
    thinking: ThinkingParam | None = None
    tools: list[Any] | None = None
    tool_choice: dict[str, Any] | None = None


class MessagesRequest(MessagesBase):
    """The body of `POST /v1/messages`. Known fields are type-checked strictly (`max_tokens: true`
    and `stream: 1` are 400s); unknown ones follow the field policy (`core.transcode.fields`)."""

    max_tokens: int = Field(ge=1)
    stream: bool | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    metadata: dict[str, Any] | None = None
    service_tier: str | None = None


class CountTokensRequest(MessagesBase):
    """The body of `POST /v1/messages/count_tokens`."""


def _bad(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param)


def is_web_search(tool: Any) -> bool:
    """Anthropic's web search server tool (`web_search_20250305` and its later versions)."""
    return isinstance(tool, dict) and str(tool.get("type") or "").startswith("web_search_")


def tool_spec(tools: list[Any] | None, choice: dict[str, Any] | None) -> ToolSpec | None:
    offered: list[Tool] = []
    for i, raw in enumerate(tools or ()):
        param = f"tools.{i}"
        if not isinstance(raw, dict):
            raise _bad(param, "must be an object")
        kind = raw.get("type", "custom")
        if is_web_search(raw):
            continue  # the upstream's own search (`ChatRequest.web_search`)
        if kind not in ("custom", None):
            raise _bad(
                f"{param}.type",
                f"{kind!r} tools are not available here (server tools and Anthropic-defined tools need "
                "Anthropic's servers); define a custom tool with name, description and input_schema",
            )
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise _bad(f"{param}.name", "Field required")
        schema = raw.get("input_schema")
        if not isinstance(schema, dict):
            raise _bad(f"{param}.input_schema", "Field required (a JSON schema object)")
        check_depth(schema, f"{param}.input_schema")
        offered.append(Tool(name, str(raw.get("description") or ""), schema, bool(raw.get("strict"))))
    choice = {"type": "auto"} if choice is None else choice
    kind = choice.get("type")
    parallel = not choice.get("disable_parallel_tool_use", False)
    names = {t.name for t in offered}
    if kind == "tool":
        name = choice.get("name")
        if name not in names:
            raise _bad("tool_choice.name", f"{name!r} is not one of the tools given")
        mode: Literal["none", "auto", "required", "forced"] = "forced"
    elif kind in ("auto", "any", "none"):
        mode = {"auto": "auto", "any": "required", "none": "none"}[kind]  # type: ignore[assignment]
        name = None
    else:
        raise _bad("tool_choice.type", "must be one of auto, any, tool, none")
    if not offered:
        if mode in ("required", "forced"):
            raise _bad("tool_choice", f"{kind!r} needs tools")
        return None
    return ToolSpec(tuple(offered), ToolChoice(mode, name), "toolu_", parallel)


def _text(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise _bad(param, "must be a string")
    return value


class _History:
    """Blocks of one request: texts of a turn gathered, tool results and earlier calls in place."""

    def __init__(self) -> None:
        self.atts: list[Attachment] = []
        self.blocks: list[Block] = []
        self.names: dict[str, str] = {}  # tool_use id -> tool name, for the results that follow

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

    def text(self, content: Any, param: str) -> str:
        """Plain content (system, a tool result, a document): text, images and documents only."""
        if isinstance(content, str):
            return content
        if not isinstance(content, list):
            raise _bad(param, "must be a string or an array of content blocks")
        texts: list[str] = []
        for j, block in enumerate(content):
            where = f"{param}.{j}"
            if not isinstance(block, dict):
                raise _bad(where, "must be an object")
            kind = block.get("type")
            if kind == "text":
                texts.append(_text(block.get("text"), f"{where}.text"))
            elif kind in ("image", "document"):
                texts.append(self.source(block, where, document=kind == "document"))
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

        for j, block in enumerate(content):
            where = f"{param}.{j}"
            if not isinstance(block, dict):
                raise _bad(where, "must be an object")
            kind = block.get("type")
            if kind == "text":
                texts.append(_text(block.get("text"), f"{where}.text"))
            elif kind in ("image", "document"):
                texts.append(self.source(block, where, document=kind == "document"))
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
            if role not in ("user", "assistant"):
                raise _bad(f"{param}.role", f"must be 'user' or 'assistant' (got {role!r})")
            self.turn(role, message.get("content"), f"{param}.content")


def normalize_messages(body: MessagesBase, *, max_tokens: int | None = None) -> ChatRequest:
    """Check, then flatten system, tools and messages into one upstream message."""
    model = require_capability(body.model, Capability.CHAT)
    thinking = body.thinking
    if thinking is not None and thinking.type == "enabled":
        if thinking.budget_tokens is None:
            raise _bad("thinking.enabled.budget_tokens", "Field required")
        if max_tokens is not None and thinking.budget_tokens >= max_tokens:
            raise _bad("max_tokens", "must be greater than thinking.budget_tokens")
    spec = tool_spec(body.tools, body.tool_choice)
    history = _History()
    system = history.text(body.system or "", "system")
    if system:
        history.blocks.append(Block("system", system))
    if spec is not None and spec.active:
        history.blocks.append(Block("system", spec.prompt()))
    history.messages(body.messages)
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
