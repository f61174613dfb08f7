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
from core.events import Citation, Finish, ToolCall, Usage
from core.transcode.answer import Accumulator
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
    image_config: ImageConfig | None = None  # image models only (functions/routes/chat_media.py)
    video_config: VideoConfig | None = None  # video models only


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


class ChatCompletionState(Accumulator[dict[str, Any]]):
    """Events -> OpenAI chunks (`handle`), and the same events -> one completion (`final`).

    Consecutive deltas of one batch (one upstream read) merge into one chunk, so a read makes one
    write. `collect=False` (streaming) keeps no text: the service already counts usage.
    """

    __slots__ = (
        "_annotations",
        "_collect",
        "_content",
        "_pending",
        "_pending_field",
        "_reasoning_text",
        "_spans",
        "_tool_calls",
        "created",
        "finish_reason",
        "include_usage",
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
        super().__init__(model, id or completion_id(), reasoning=reasoning, image_format=image_format)
        self.created = created or int(time.time())
        self.include_usage = include_usage
        self._collect = collect
        self._content: list[str] = []
        self._reasoning_text: list[str] = []
        self._pending: list[str] = []  # deltas of this batch not yet in a chunk
        self._pending_field = ""  # "content" or "reasoning_content"
        self._tool_calls: list[dict[str, Any]] = []
        self._spans = CitationSpans()
        self._annotations: list[dict[str, Any]] = []
        self.finish_reason: str | None = None

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def start(self) -> list[dict[str, Any]]:
        """The first chunk: the role, before any content."""
        return [self._chunk({"role": "assistant", "content": "", "refusal": None})]

    def _text(self, text: str, out: list[dict[str, Any]]) -> None:
        if self._pending_field != "content":
            self._flush(out)
            self._pending_field = "content"
        self._pending.append(text)

    def _reasoning(self, text: str, out: list[dict[str, Any]]) -> None:
        if self._pending_field != "reasoning_content":
            self._flush(out)
            self._pending_field = "reasoning_content"
        self._pending.append(text)
        if self._collect:
            self._reasoning_text.append(text)

    def _flush(self, out: list[dict[str, Any]]) -> None:
        pending = self._pending
        if not pending:
            return
        joined = pending[0] if len(pending) == 1 else "".join(pending)
        pending.clear()
        if self._pending_field == "content":
            self._spans.add(joined)
            self.ends_newline = joined.endswith("\n")
            if self._collect:
                self._content.append(joined)
        out.append(self._chunk({self._pending_field: joined}))

    def _after_newline(self) -> bool:
        if self._pending and self._pending_field == "content":
            return self._pending[-1].endswith("\n")
        return self.ends_newline

    def _call(self, call: ToolCall, out: list[dict[str, Any]]) -> None:
        """One chunk per call, whole: index, id, type and name come with the first (only) delta."""
        self._flush(out)
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
        out.append(self._chunk({"tool_calls": [{"index": len(self._tool_calls) - 1, **entry}]}))

    def _cite(self, citation: Citation, out: list[dict[str, Any]]) -> None:
        """An `url_citation` on the span of the citation's mark in the content."""
        self._flush(out)
        span = self._spans.span(citation)
        if span is None:
            return
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
        out.append(self._chunk({"annotations": [annotation]}))

    def _finish(self, finish: Finish, out: list[dict[str, Any]]) -> None:
        self._flush(out)
        self.finish_reason = finish.reason
        out.append(self._chunk({}, self.finish_reason))
        if self.include_usage and self.usage is not None:
            out.append(self._usage_chunk(self.usage))

    def _fail(self, error: GatewayError, out: list[dict[str, Any]]) -> None:
        self._flush(out)
        out.append(error.openai_body())

    def _usage_chunk(self, usage: Usage) -> dict[str, Any]:
        """The usage chunk (`stream_options.include_usage`): no choices."""
        return {**self._chunk({}), "choices": [], "usage": usage_body(usage)}

    def _body(self) -> dict[str, Any]:
        """The non-streamed object (after every event was handled with `collect=True`)."""
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self._content), "refusal": None}
        if self._reasoning_text:
            message["reasoning_content"] = "".join(self._reasoning_text)
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
