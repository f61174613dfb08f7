"""OpenAI chat completions: the request model, its normalisation, and one accumulator for both
the streamed chunks and the non-streamed object (openai-python's ChatCompletionStreamState idea).

Contract kept exactly: `stream` omitted means a JSON object; a stream is a role chunk, content and
`reasoning_content` deltas, one `finish_reason` chunk, an optional usage chunk
(`stream_options.include_usage`) and `[DONE]` (written by the edge). A failure after the first
chunk becomes a chunk carrying `error`, which the SDKs raise as an `APIError`. Parameters the
gateway cannot honour are refused with a 400 naming them, never silently ignored.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Literal

from pydantic import Field

from core.catalog import Capability, require_capability
from core.errors import GatewayError, InvalidRequest
from core.events import (
    Citation,
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
from core.protocol.render import render_image, tool_line
from core.transcode.citations import CitationSpans
from core.transcode.fields import RequestModel
from core.transcode.normalize import ChatRequest, openai_messages
from core.transcode.openai_tools import openai_tool_spec
from core.transcode.structured import chat_output_format

REASONING_OFF = ("none", "minimal")


class StreamOptions(RequestModel):
    include_usage: bool = False
    include_obfuscation: bool | None = None


class ImageConfig(RequestModel):
    """`image_config` of an image model in chat completions (grokgate's extension)."""

    n: int | None = None
    size: str | None = None
    response_format: Literal["url", "b64_json", "markdown"] | None = None


class VideoConfig(RequestModel):
    """`video_config` of a video model in chat completions (grokgate's extension)."""

    seconds: int | str | None = None
    size: str | None = None
    resolution_name: str | None = None
    preset: str | None = None


class ChatCompletionRequest(RequestModel):
    """The body of `POST /v1/chat/completions`. Known fields are type-checked strictly (a boolean
    is not a number); `docs/compatibility.md` says what each one does."""

    model: str
    messages: list[Any] = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1, le=128)
    stop: str | list[str] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    prompt_cache_retention: Literal["in_memory", "in-memory", "24h"] | None = None
    moderation: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    parallel_tool_calls: bool | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    response_format: Any = None  # checked by core.transcode.structured
    logprobs: bool | None = None
    top_logprobs: int | None = None
    logit_bias: dict[str, Any] | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    image_config: ImageConfig | None = None  # image models only (functions/chat_media.py)
    video_config: VideoConfig | None = None  # video models only


# The argument that says what a server-side tool looked for; image searches describe theirs.
_TOOL_DETAIL = ("query", "q", "url", "image_description", "imageDescription", "message")


def _unsupported(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"'{param}' is not supported: {why}", param=param, code="unsupported_parameter")


def normalize_request(body: ChatCompletionRequest) -> ChatRequest:
    """Check what the upstream can honour, then flatten the messages (400s name the field)."""
    model = require_capability(body.model, Capability.CHAT)
    if body.n not in (None, 1):
        raise _unsupported("n", "the upstream returns one answer per request; use n=1.")
    if body.logprobs or body.top_logprobs:
        raise _unsupported(
            "logprobs" if body.logprobs else "top_logprobs", "the upstream reports no logprobs."
        )
    if body.logit_bias:
        raise _unsupported("logit_bias", "the upstream has no token biasing.")
    if body.audio is not None or (body.modalities and set(body.modalities) - {"text"}):
        raise _unsupported("modalities" if body.modalities else "audio", "only text output is available.")
    if body.prediction is not None:
        raise _unsupported("prediction", "predicted outputs are not available.")
    output = chat_output_format(body.response_format)
    tools, choice = body.tools, body.tool_choice
    if body.functions is not None:  # the deprecated form of tools
        tools = [{"type": "function", "function": f} for f in body.functions]
        call = body.function_call
        choice = {"type": "function", "function": call} if isinstance(call, dict) else call
    spec = openai_tool_spec(tools, choice, body.parallel_tool_calls) if choice != "none" else None
    if body.stream_options is not None and not body.stream:
        raise InvalidRequest(
            "'stream_options' is only allowed when 'stream' is true.", param="stream_options"
        )
    stop: tuple[str, ...] = ()
    if body.stop is not None:
        stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop)
        if len(stop) > 4 or any(not s for s in stop):
            raise InvalidRequest("'stop' takes up to 4 non-empty sequences.", param="stop")
    limit = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    message, attachments = openai_messages(body.messages, tool_prompt=spec.prompt() if spec else "")
    if output is not None:
        message += "\n\n[system]: " + output.prompt()
    reasoning = model.reasoning and body.reasoning_effort not in REASONING_OFF
    return ChatRequest(
        model=model,
        message=message,
        attachments=tuple(attachments),
        reasoning=reasoning,
        max_output_tokens=limit,
        stop=stop,
        tools=spec,
        output=output,
        web_search=body.web_search_options is not None,
    )


def completion_id() -> str:
    return f"chatcmpl-{int(time.time() * 1000)}{secrets.token_hex(6)}"


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class ChatCompletionState:
    """Events -> OpenAI chunks (`handle`), and the same events -> one completion (`final`).

    Consecutive deltas of one batch (one upstream read) merge into one chunk, so a read makes one
    write. `collect=False` (streaming) keeps no text: the service already counts usage.
    """

    __slots__ = (
        "_annotations",
        "_collect",
        "_content",
        "_ends_newline",
        "_reasoning",
        "_show_reasoning",
        "_spans",
        "_tool_calls",
        "created",
        "error",
        "finish_reason",
        "id",
        "image_format",
        "include_usage",
        "model",
        "usage",
    )

    def __init__(
        self,
        model: str,
        *,
        reasoning: bool = True,
        include_usage: bool = False,
        image_format: str = "url",
        collect: bool = False,
        id: str | None = None,
        created: int | None = None,
    ) -> None:
        self.id = id or completion_id()
        self.created = created or int(time.time())
        self.model = model
        self.include_usage = include_usage
        self.image_format = image_format
        self._show_reasoning = reasoning
        self._collect = collect
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._ends_newline = True
        self._tool_calls: list[dict[str, Any]] = []
        self._spans = CitationSpans()
        self._annotations: list[dict[str, Any]] = []
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.error: GatewayError | None = None

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    @property
    def ended(self) -> bool:
        return self.finish_reason is not None or self.error is not None

    def start(self) -> list[dict[str, Any]]:
        """The first chunk: the role, before any content."""
        return [self._chunk({"role": "assistant", "content": "", "refusal": None})]

    def handle(self, events: list[Event]) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        text: list[str] = []
        thought: list[str] = []
        for event in events:
            kind = type(event)
            if kind is TextDelta:
                if thought:
                    chunks.append(self._chunk({"reasoning_content": "".join(thought)}))
                    thought.clear()
                text.append(event.text)  # type: ignore[union-attr]
            elif kind is ReasoningDelta or kind is ServerToolUse:
                if not self._show_reasoning:
                    continue
                if text:
                    chunks.append(self._content_chunk(text))
                    text.clear()
                if kind is ReasoningDelta:
                    thought.append(event.text)  # type: ignore[union-attr]
                else:
                    tool: ServerToolUse = event  # type: ignore[assignment]
                    thought.append(tool_line(tool.name, tool.args, _TOOL_DETAIL))
                if self._collect:
                    self._reasoning.append(thought[-1])
            elif kind is ImageOut:
                image: ImageOut = event  # type: ignore[assignment]
                if image.final and not image.moderated:
                    if not (text[-1].endswith("\n") if text else self._ends_newline):
                        text.append("\n\n")
                    text.append(render_image(image.url, self.image_format) + "\n\n")
            elif kind is ToolCall:
                if thought:
                    chunks.append(self._chunk({"reasoning_content": "".join(thought)}))
                    thought.clear()
                if text:
                    chunks.append(self._content_chunk(text))
                    text.clear()
                chunks.append(self._tool_chunk(event))  # type: ignore[arg-type]
            elif kind is Citation:
                if text:
                    chunks.append(self._content_chunk(text))
                    text.clear()
                annotation = self._annotation(event)  # type: ignore[arg-type]
                if annotation is not None:
                    chunks.append(self._chunk({"annotations": [annotation]}))
            elif kind is Usage:
                self.usage = event  # type: ignore[assignment]
            elif kind is Finish or kind is Fault:
                if thought:
                    chunks.append(self._chunk({"reasoning_content": "".join(thought)}))
                    thought.clear()
                if text:
                    chunks.append(self._content_chunk(text))
                    text.clear()
                if kind is Fault:
                    self.error = event.error  # type: ignore[union-attr]
                    chunks.append(self.error.openai_body())
                else:
                    self.finish_reason = event.reason  # type: ignore[union-attr]
                    chunks.append(self._chunk({}, self.finish_reason))
                    if self.include_usage and self.usage is not None:
                        chunks.append(self._usage_chunk(self.usage))
        if thought:
            chunks.append(self._chunk({"reasoning_content": "".join(thought)}))
        if text:
            chunks.append(self._content_chunk(text))
        return chunks

    def _annotation(self, citation: Citation) -> dict[str, Any] | None:
        """An `url_citation` on the span of the citation's mark in the content."""
        span = self._spans.span(citation)
        if span is None:
            return None
        annotation = {
            "type": "url_citation",
            "url_citation": {
                "start_index": span[0],
                "end_index": span[1],
                "title": citation.title or citation.url,
                "url": citation.url,
            },
        }
        if self._collect:
            self._annotations.append(annotation)
        return annotation

    def _content_chunk(self, text: list[str]) -> dict[str, Any]:
        joined = "".join(text)
        self._spans.add(joined)
        self._ends_newline = joined.endswith("\n")
        if self._collect:
            self._content.append(joined)
        return self._chunk({"content": joined})

    def _tool_chunk(self, call: ToolCall) -> dict[str, Any]:
        """One chunk per call, whole: index, id, type and name come with the first (only) delta."""
        entry: dict[str, Any] = (
            {"id": call.id, "type": "custom", "custom": {"name": call.name, "input": call.arguments}}
            if call.custom
            else {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
        )
        self._tool_calls.append(entry)
        return self._chunk({"tool_calls": [{"index": len(self._tool_calls) - 1, **entry}]})

    def _usage_chunk(self, usage: Usage) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [],
            "usage": usage_body(usage),
        }

    def final(self) -> dict[str, Any]:
        """The non-streamed object (after every event was handled with `collect=True`)."""
        if self.error is not None:
            raise self.error
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self._content), "refusal": None}
        if self._reasoning:
            message["reasoning_content"] = "".join(self._reasoning)
        if self._annotations:
            message["annotations"] = self._annotations
        if self._tool_calls:
            message["tool_calls"] = self._tool_calls
            message["content"] = message["content"] or None
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self.finish_reason or "stop",
                }
            ],
        }
        if self.usage is not None:
            body["usage"] = usage_body(self.usage)
        return body
