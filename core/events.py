"""The internal event union that flows from the upstream decoder to the client dialects.

Upstream frames are decoded into these; each dialect's accumulator (OpenAI chat, Responses,
Anthropic) turns them into its own wire events. Slotted dataclasses: these sit on the per-token
hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.errors import GatewayError
    from core.protocol.classify import UpstreamFailure


@dataclass(slots=True, frozen=True)
class TextDelta:
    """A piece of the visible answer."""

    text: str


@dataclass(slots=True, frozen=True)
class ReasoningDelta:
    """A piece of reasoning; `agent` names the rollout in multi-agent modes ("Grok", "Agent 1")."""

    text: str
    agent: str = ""


@dataclass(slots=True, frozen=True)
class ToolCall:
    """A client-side tool call found in the answer by the emulation detector.

    `arguments` is JSON text, or for a `custom` (free-form) tool the raw input text; `namespace`
    names the Responses namespace tool the function belongs to ("" for none). `kind`: `function`,
    `custom` (free-form) or `tool_search` (Responses' client-run tool search).
    """

    id: str
    name: str
    arguments: str
    namespace: str = ""
    kind: str = "function"

    @property
    def custom(self) -> bool:
        return self.kind == "custom"


@dataclass(slots=True, frozen=True)
class ServerToolUse:
    """The upstream ran one of its own tools (web search, browse): shown as reasoning, never a call."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class ImageOut:
    """A generated image; `url` is the upstream asset URL, `final` once progress reached 100."""

    url: str
    progress: int = 100
    final: bool = True
    moderated: bool = False
    id: str = ""


@dataclass(slots=True, frozen=True)
class VideoOut:
    """Progress of a generated video; `url` is set on the final frame."""

    progress: int
    url: str = ""
    thumbnail_url: str = ""
    post_id: str = ""
    moderated: bool = False
    video_id: str = ""


@dataclass(slots=True, frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True, frozen=True)
class Finish:
    """The answer ended; `reason` is one of stop, length, tool_calls, stop_sequence."""

    reason: str = "stop"
    stop_sequence: str | None = None


@dataclass(slots=True, frozen=True)
class SearchResults:
    """Pages the upstream's own search found (after its `ServerToolUse`): (url, title) pairs, each
    URL once per answer."""

    results: tuple[tuple[str, str], ...]


@dataclass(slots=True, frozen=True)
class Citation:
    """A source the answer cites, one per mark: the text just emitted carries it as
    `[[index]](url)` (the index numbers URLs by first citation)."""

    index: int
    url: str
    title: str = ""


@dataclass(slots=True, frozen=True)
class Fault:
    """A failure inside a stream; the dialect renders it as its in-stream error.

    `failure` is set when the upstream caused it (the account outcome comes from it).
    """

    error: GatewayError
    failure: UpstreamFailure | None = None


Event = (
    TextDelta
    | ReasoningDelta
    | ToolCall
    | ServerToolUse
    | ImageOut
    | VideoOut
    | SearchResults
    | Citation
    | Usage
    | Finish
    | Fault
)
