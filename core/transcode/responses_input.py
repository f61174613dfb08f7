"""OpenAI Responses requests -> one normalised `ChatRequest` (instructions, input items, tools).

Input is a string or a list of items: messages (`input_text`, `output_text`, `refusal`,
`input_image`, `input_file` parts), `function_call` and `function_call_output` (rendered into the
history in the markup the tool prompt asks for), and `reasoning` items (skipped: the upstream's
thinking is never replayed). `previous_response_id` is resolved before (the stored conversation
comes in as `history`) and `item_reference` items are replaced by the stored items they name
(`core.services.stored_responses`); uploaded `file_id`s are refused with a 400.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Literal

from pydantic import Field

from core.catalog import Capability, require_capability
from core.errors import InvalidRequest
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
from core.transcode.openai_tools import openai_tool_spec, wants_web_search
from core.transcode.sealed import Sealer
from core.transcode.structured import responses_output_format
from core.transcode.tools import render_calls, result_role

REASONING_OFF = ("none", "minimal")
# `include` values that only concern tools this gateway never runs: nothing to include, no harm.
_INCLUDE_OK = (
    "reasoning.encrypted_content",
    "web_search_call.results",
    "web_search_call.action.sources",
    "file_search_call.results",
    "code_interpreter_call.outputs",
    "computer_call_output.output.image_url",
    "message.input_image.image_url",
)


class ReasoningParam(RequestModel):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class TextParam(RequestModel):
    """`text`: the output format (see `core.transcode.structured`) and verbosity (a style hint the
    upstream has no knob for: accepted)."""

    format: dict[str, Any] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ResponsesRequest(RequestModel):
    """The body of `POST /v1/responses`. Known fields are type-checked strictly (a boolean is not
    a number); `docs/compatibility.md` says what each one does."""

    model: str
    input: str | list[Any] = Field(min_length=1)
    instructions: str | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    reasoning: ReasoningParam | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    max_tool_calls: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    previous_response_id: str | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None
    include: list[str] | None = None
    text: TextParam | None = None
    truncation: Literal["auto", "disabled"] | None = None
    client_metadata: dict[str, Any] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: Literal["in-memory", "in_memory", "24h"] | None = None
    prompt_cache_options: dict[str, Any] | None = None
    moderation: dict[str, Any] | None = None
    context_management: list[Any] | None = None
    image: dict[str, Any] | None = None
    access_programs: Any = None
    background_options: dict[str, Any] | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    background: bool | None = None
    conversation: Any = None
    prompt: Any = None


def _unsupported(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"'{param}' is not supported: {why}", param=param, code="unsupported_parameter")


def _check(body: ResponsesRequest) -> None:
    text = body.text
    if text is not None and text.model_extra and not text.model_fields_set & TextParam.model_fields.keys():
        # unknown keys beside known ones are tolerated; an object of nothing but is a wrong value
        first = next(iter(text.model_extra))
        raise InvalidRequest(
            f"'text' holds none of its fields (format, verbosity): '{first}' is not one of them.",
            param=f"text.{first}",
        )
    if body.background:
        raise _unsupported(
            "background", "background responses need stored responses; use stream=true instead."
        )
    if body.conversation is not None:
        raise _unsupported(
            "conversation", "the Conversations API is not available; send the history in 'input'."
        )
    if body.prompt is not None:
        raise _unsupported("prompt", "stored prompt templates are not available; send 'instructions'.")
    if body.top_logprobs:
        raise _unsupported("top_logprobs", "the upstream reports no logprobs.")
    for value in body.include or ():
        if value not in _INCLUDE_OK:
            raise _unsupported("include", f"{value!r} cannot be produced by this upstream.")
    if body.stream_options is not None and not body.stream:
        raise InvalidRequest(
            "'stream_options' is only allowed when 'stream' is true.", param="stream_options"
        )


def _text_of(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"'{param}' must be a string.", param=param)
    return value


def _parts(content: Any, param: str, atts: list[Attachment]) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"'{param}' must be a string or an array.", param=param)
    texts: list[str] = []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise InvalidRequest(f"'{where}' must be an object.", param=where)
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text", "summary_text"):
            texts.append(_text_of(part.get("text"), f"{where}.text"))
        elif kind == "refusal":
            texts.append(str(part.get("refusal") or ""))
        elif kind == "input_image":
            if part.get("file_id"):
                raise _unsupported(f"{where}.file_id", "uploaded files are not available; send image_url.")
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                raise InvalidRequest(f"'{where}.image_url' is required.", param=f"{where}.image_url")
            atts.append(attachment_from_url(url, f"{where}.image_url"))
        elif kind == "input_file":
            if part.get("file_id"):
                raise _unsupported(f"{where}.file_id", "uploaded files are not available; send file_data.")
            if isinstance(part.get("file_url"), str):
                atts.append(attachment_from_url(part["file_url"], f"{where}.file_url"))
                continue
            data = part.get("file_data")
            if not isinstance(data, str) or not data:
                raise InvalidRequest(f"'{where}.file_data' is required.", param=f"{where}.file_data")
            atts.append(attachment_from_base64(data, part.get("filename"), f"{where}.file_data"))
        elif kind == "input_audio":
            raise _unsupported(where, "audio input is not available from this upstream.")
        else:
            raise InvalidRequest(f"'{where}.type' {kind!r} is not supported.", param=f"{where}.type")
    return "\n".join(t for t in texts if t)


def _call_name(item: dict[str, Any], param: str) -> str:
    name = _text_of(item.get("name"), f"{param}.name")
    namespace = item.get("namespace")
    if namespace is None:
        return name
    return f"{_text_of(namespace, f'{param}.namespace')}.{name}"


def _reasoning_item(item: dict[str, Any], param: str, sealer: Sealer | None) -> None:
    """A reasoning item given back: its `encrypted_content` must be one this gateway signed."""
    token = item.get("encrypted_content")
    if token is None:
        return
    where = f"{param}.encrypted_content"
    if sealer is None:
        raise InvalidRequest(f"'{where}' cannot be verified here.", param=where)
    sealer.open(token, where)


def input_blocks(
    items: str | list[Any], atts: list[Attachment], sealer: Sealer | None = None, replayed: int = 0
) -> list[Block]:
    """`input` -> history blocks; calls grouped into one assistant turn, outputs as tool results.

    The first `replayed` items are a stored conversation: errors name the client's own items."""
    if isinstance(items, str):
        return [Block("user", items)]
    blocks: list[Block] = []
    names: dict[str, str] = {}
    calls: list[tuple[str, str]] = []

    def close_calls() -> None:
        if calls:
            blocks.append(Block("assistant", render_calls(calls)))
            calls.clear()

    for i, item in enumerate(items):
        param = f"input[{i - replayed}]" if i >= replayed else "previous_response_id"
        if not isinstance(item, dict):
            raise InvalidRequest(f"'{param}' must be an object.", param=param)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "tool_search_call":
            call_id = item.get("call_id") or item.get("id") or ""
            names[str(call_id)] = "tool_search"
            arguments = item.get("arguments")
            calls.append(
                ("tool_search", arguments if isinstance(arguments, str) else json.dumps(arguments or {}))
            )
            continue
        if kind == "function_call" or kind == "custom_tool_call":
            name = _call_name(item, param)
            call_id = _text_of(item.get("call_id"), f"{param}.call_id")
            if kind == "custom_tool_call":
                arguments = _text_of(item.get("input", ""), f"{param}.input")
            else:
                arguments = item.get("arguments", "{}")
            names[call_id] = name
            calls.append((name, arguments if isinstance(arguments, str) else "{}"))
            continue
        close_calls()
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise InvalidRequest(
                    f"'{param}.role' must be user, assistant, system or developer (got {role!r}).",
                    param=f"{param}.role",
                )
            blocks.append(Block(role, _parts(item.get("content"), f"{param}.content", atts)))
        elif kind == "function_call_output" or kind == "custom_tool_call_output":
            call_id = _text_of(item.get("call_id"), f"{param}.call_id")
            output = _parts(item.get("output"), f"{param}.output", atts)
            blocks.append(Block(result_role(call_id, names.get(call_id, "")), output or "(no output)"))
        elif kind == "web_search_call":
            pass  # the upstream searched; the answer that followed carries what it found
        elif kind == "tool_search_output":
            call_id = str(item.get("call_id") or "")
            found = [_tool_label(t) for t in item.get("tools") or () if isinstance(t, dict)]
            text = "Loaded tools (now available): " + ", ".join(found) if found else "No tools found."
            blocks.append(Block(result_role(call_id, "tool_search"), text))
        elif kind == "additional_tools":
            continue  # tools offered from here on: part of the tool prompt (`additional_tools`)
        elif kind == "reasoning":
            _reasoning_item(item, param, sealer)  # not replayed: the answer that followed it is
        elif kind == "item_reference":
            raise _unsupported(f"{param}.type", "this item reference was not resolved; send the item itself.")
        else:
            raise InvalidRequest(
                f"'{param}.type' {kind!r} is not supported (message, function_call, function_call_output, "
                "custom_tool_call, custom_tool_call_output, tool_search_call, tool_search_output, additional_tools "
                "and reasoning items are).",
                param=f"{param}.type",
            )
    close_calls()
    return blocks


def _tool_label(tool: dict[str, Any]) -> str:
    name = str(tool.get("name") or tool.get("type") or "?")
    members = [str(t.get("name")) for t in tool.get("tools") or () if isinstance(t, dict)]
    return f"{name} ({', '.join(members)})" if members else name


def additional_tools(items: str | list[Any]) -> list[tuple[str, list[Any]]]:
    """The tools of `additional_tools` input items (Codex sends its tools this way) and of
    `tool_search_output` items (the tools a client-run search loaded), by place.

    The upstream sees one flattened message, so tools added anywhere in the input are offered for
    the whole turn."""
    if isinstance(items, str):
        return []
    found: list[tuple[str, list[Any]]] = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("type") in ("additional_tools", "tool_search_output"):
            tools = item.get("tools")
            if not isinstance(tools, list):
                raise InvalidRequest(f"'input[{i}].tools' must be an array.", param=f"input[{i}].tools")
            found.append((f"input[{i}].tools", tools))
    return found


def normalize_responses(
    body: ResponsesRequest,
    sealer: Sealer | None = None,
    ignored: list[str] | None = None,
    history: list[dict[str, Any]] | None = None,
) -> ChatRequest:
    """Check what the upstream can honour, then flatten instructions, tools and input.

    `sealer` checks the `encrypted_content` of reasoning items given back; tools that cannot run
    here are named in `ignored`; `history` (the conversation `previous_response_id` names) goes
    ahead of the input."""
    _check(body)
    model = require_capability(body.model, Capability.CHAT)
    spec = openai_tool_spec(
        body.tools, body.tool_choice, body.parallel_tool_calls, ignored, additional_tools(body.input)
    )
    if spec is not None and body.max_tool_calls is not None:
        spec = replace(spec, max_calls=body.max_tool_calls)
    atts: list[Attachment] = []
    blocks: list[Block] = []
    if body.instructions:
        blocks.append(Block("system", body.instructions))
    if spec is not None and spec.active:
        blocks.append(Block("system", spec.prompt()))
    if history:
        given = [{"role": "user", "content": body.input}] if isinstance(body.input, str) else body.input
        blocks += input_blocks([*history, *given], atts, sealer, len(history))
    else:
        blocks += input_blocks(body.input, atts, sealer)
    output = responses_output_format(body.text.format if body.text else None)
    if output is not None:
        blocks.append(Block("system", output.prompt()))
    message = flatten(blocks)
    if not message.strip() and not atts:
        raise InvalidRequest("'input' holds no text and no attachments.", param="input")
    check_attachments(atts)
    effort = body.reasoning.effort if body.reasoning else None
    return ChatRequest(
        model=model,
        message=message,
        attachments=tuple(atts),
        reasoning=model.reasoning and effort not in REASONING_OFF,
        max_output_tokens=body.max_output_tokens,
        tools=spec if spec is not None and spec.active else None,
        output=output,
        web_search=wants_web_search(body.tools),
    )
