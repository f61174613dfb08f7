"""One answer's lifecycle, shared by the three client dialects (chat completions, Responses,
Messages).

`Accumulator` holds the event switch, written once: each batch of core events (one upstream
read) becomes the dialect's outbound events, through hooks each dialect renders in its own
shapes. Before the hooks, one step shared by every dialect turns the upstream's extras into
dialect-neutral items:

* a server-side search (when the client offered a search tool) -> `_search(query)`; any other
  server tool use, or a search nobody offered -> a reasoning line naming what it looked for;
* a final, unmoderated generated image -> answer text in its own paragraph (`image_format`);
* pages found and citations -> `_results` and `_cite`, which a dialect may render or skip.

`start()` gives the lifecycle head, `handle(batch)` what a batch becomes, `fail(error)` the
dialect's in-stream error and terminal event, `ended` says a terminal event went out, and
`final()` the non-streamed body (a failure is raised, to become an HTTP error). One accumulator
serves streaming and non-streaming alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Generic, Protocol, TypeVar

from core.errors import GatewayError
from core.events import (
    Citation,
    Event,
    Fault,
    Finish,
    ImageOut,
    ReasoningDelta,
    SearchResults,
    ServerToolUse,
    TextDelta,
    ToolCall,
    Usage,
)

E = TypeVar("E")

ARGUMENT_PIECE = 32  # a client tool call's arguments stream in pieces of this many characters
SEARCHES = ("web_search", "x_search", "x_keyword_search", "x_semantic_search")
# The argument that says what a server-side tool looked for; image searches describe theirs.
TOOL_DETAIL = ("query", "q", "url", "image_description", "imageDescription", "message")


class Stream(Protocol):
    """What the chat service hands back: batches of events; always closed."""

    def __aiter__(self) -> AsyncIterator[list[Event]]: ...

    async def aclose(self) -> None: ...


def pieces(text: str) -> list[str]:
    """A tool call's arguments as the deltas they stream in."""
    return [text[at : at + ARGUMENT_PIECE] for at in range(0, len(text), ARGUMENT_PIECE)]


def search_query(args: dict[str, Any]) -> str:
    return next((v for k in ("query", "q") if isinstance(v := args.get(k), str)), "")


def tool_line(name: str, args: dict[str, Any]) -> str:
    """A server-side tool call as one line of reasoning: its name and the first argument that
    says what it looked for."""
    for key in TOOL_DETAIL:
        value = args.get(key)
        if isinstance(value, str) and value:
            return f"\n[{name}: {value}]\n"
    return f"\n[{name}]\n"


def render_image(url: str, image_format: str) -> str:
    """A generated image inside an answer, per the `image_format` setting."""
    if image_format == "url":
        return url
    return f"![image]({url})"


def answer_image(url: str, image_format: str, *, after_newline: bool) -> str:
    """A final generated image as answer text: its own paragraph, whatever came before it."""
    return ("" if after_newline else "\n\n") + render_image(url, image_format) + "\n\n"


class Accumulator(Generic[E]):
    """The shared lifecycle; a dialect implements the hooks (`_text`, `_reasoning`, `_call`,
    `_finish`, `_fail`, `_body`, `start`) and may render the optional ones."""

    __slots__ = (
        "ended",
        "ends_newline",
        "error",
        "id",
        "image_format",
        "model",
        "show_reasoning",
        "usage",
        "web_search",
    )

    def __init__(
        self, model: str, id: str, *, reasoning: bool, image_format: str, web_search: bool = False
    ) -> None:
        self.id = id
        self.model = model
        self.show_reasoning = reasoning
        self.image_format = image_format
        self.web_search = web_search  # the client offered a search tool: searches are items of their own
        self.usage: Usage | None = None
        self.error: GatewayError | None = None
        self.ended = False
        self.ends_newline = True  # the answer text so far ends a line (an image starts its own paragraph)

    def start(self) -> list[E]:
        raise NotImplementedError

    def handle(self, events: list[Event]) -> list[E]:
        out: list[E] = []
        text = self._text
        for event in events:
            kind = type(event)
            if kind is TextDelta:
                text(event.text, out)  # type: ignore[union-attr]
            elif kind is ReasoningDelta:
                if self.show_reasoning:
                    self._reasoning(event.text, out)  # type: ignore[union-attr]
            elif kind is ServerToolUse:
                tool: ServerToolUse = event  # type: ignore[assignment]
                if self.web_search and tool.name in SEARCHES:
                    self._search(search_query(tool.args), out)
                elif self.show_reasoning:
                    self._reasoning(tool_line(tool.name, tool.args), out)
            elif kind is ImageOut:
                image: ImageOut = event  # type: ignore[assignment]
                if image.final and not image.moderated:
                    after = self._after_newline()
                    text(answer_image(image.url, self.image_format, after_newline=after), out)
            elif kind is Citation:
                self._cite(event, out)  # type: ignore[arg-type]
            elif kind is SearchResults:
                self._results(event.results, out)  # type: ignore[union-attr]
            elif kind is ToolCall:
                self._call(event, out)  # type: ignore[arg-type]
            elif kind is Usage:
                self.usage = event  # type: ignore[assignment]
            elif kind is Finish:
                self.ended = True
                self._finish(event, out)  # type: ignore[arg-type]
            elif kind is Fault:
                self.ended = True
                self.error = event.error  # type: ignore[union-attr]
                self._fail(self.error, out)
        self._flush(out)
        return out

    def fail(self, error: GatewayError) -> list[E]:
        """The dialect's in-stream error and terminal event."""
        return self.handle([Fault(error)])

    def final(self) -> dict[str, Any]:
        """The non-streamed body (a failure is raised, to become an HTTP error)."""
        if self.error is not None:
            raise self.error
        return self._body()

    # -- hooks

    def _text(self, text: str, out: list[E]) -> None:
        raise NotImplementedError

    def _reasoning(self, text: str, out: list[E]) -> None:
        raise NotImplementedError

    def _call(self, call: ToolCall, out: list[E]) -> None:
        raise NotImplementedError

    def _finish(self, finish: Finish, out: list[E]) -> None:
        raise NotImplementedError

    def _fail(self, error: GatewayError, out: list[E]) -> None:
        raise NotImplementedError

    def _body(self) -> dict[str, Any]:
        raise NotImplementedError

    def _search(self, query: str, out: list[E]) -> None:
        """A search the client offered the tool for (a dialect that takes `web_search` renders it)."""
        raise NotImplementedError

    def _results(self, results: tuple[tuple[str, str], ...], out: list[E]) -> None:
        """Pages the last search found (url, title)."""

    def _cite(self, citation: Citation, out: list[E]) -> None:
        """A citation of the text just emitted (its mark ends that text)."""

    def _flush(self, out: list[E]) -> None:
        """The end of a batch: anything a dialect merged within it goes out."""

    def _after_newline(self) -> bool:
        return self.ends_newline
