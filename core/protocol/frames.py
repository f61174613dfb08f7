"""Grok's chat stream: bytes -> lines -> frames -> `core.events`, pure and incremental.

`FrameDecoder.feed(chunk)` returns the events that chunk completed; `flush()` is called at EOF.
No I/O: the transport only loops and feeds (httpx's decoders, openai's SSE decoder).

Lines (docs/protocol.md#lines): NDJSON, though `data:` prefixes, `event:`/`id:`/comment lines, blank
lines and CRLF are tolerated; a line may be split across any number of chunks and may be up to
8 MiB. Frames: F1 conversation, F2 user response, F3 answer token, F4 thinking, F5 tool
card, F6 raw function result (skipped), F7 search results, F8 card attachment (citations,
searched and generated images), F9 streaming image, F10 streaming video, F11 model response,
F12 soft stop, F13 final metadata, F14 in-band errors (top level, nested, `streamErrors`).

The end: the first F12 or F13, or `data: [DONE]`; an F12 that rides on an answer token
is text, not the stop. Nothing is read after the end. An end with no answer is an empty stream,
EOF without an end marker (and without an F11) is a truncated stream, and an HTML body is a
challenge: all three become `Fault` events, so no stream ends silently.

Events: the answer text of one read is one `TextDelta` until another frame comes between, and
the reasoning of one rollout in one read is one `ReasoningDelta` until another event comes.

Speed: nearly every line is an answer or thinking token that differs from the one before only in
its token; `core/protocol/token_lines.py` reads runs of such lines many at a time and hands the
decoder their tokens (`emit_tokens`), anything else one line at a time (`decode_line`).
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

import orjson

from core.events import (
    Citation,
    Event,
    Fault,
    Finish,
    ReasoningDelta,
    SearchResults,
    ServerToolUse,
    TextDelta,
)
from core.protocol import frame_fields
from core.protocol.classify import Kind, UpstreamFailure, classify_inband, empty_stream, truncated_stream
from core.protocol.render import Renderer
from core.protocol.token_lines import Template, TokenLines

MAX_LINE = 8 * 1024 * 1024

_SKIP_PREFIXES = (b"event:", b"id:", b"retry:", b":")
# Where search results travel (F7, F11): web pages, and X posts (F7).
SEARCH_KEYS = ("webSearchResults", "citedWebSearchResults", "xSearchResults", "xposts", "citedXposts")
# Every response key `_other` reads but isSoftStop (all make events): a thinking token frame with
# one of them is no template for the fast path.
EVENT_KEYS = frozenset(
    {
        "error",
        "userResponse",
        *SEARCH_KEYS,
        "cardAttachment",
        "cardAttachments",
        "streamingImageGenerationResponse",
        "streamingVideoGenerationResponse",
        "modelResponse",
        "finalMetadata",
    }
)


def _fault(failure: UpstreamFailure) -> Fault:
    return Fault(failure.to_error(), failure)


class FrameDecoder:
    """One upstream chat stream. Attributes after decoding: `conversation_id`, `response_id`."""

    __slots__ = (
        "_agent",
        "_assets",
        "_content",
        "_fast",
        "_html",
        "_images",
        "_max_line",
        "_model_response",
        "_parts",
        "_pending",
        "_renderer",
        "_run",
        "_sources",
        "_streamed",
        "_think",
        "conversation_id",
        "done",
        "response_id",
    )

    def __init__(self, *, assets_url: str = "https://assets.grok.com", max_line: int = MAX_LINE) -> None:
        self._assets = assets_url.rstrip("/") + "/"
        self._max_line = max_line
        self._parts: list[bytes] = []  # an unfinished line, in pieces
        self._pending = 0
        self._renderer = Renderer()
        self._run: list[str] = []  # answer text of this feed not yet emitted: one TextDelta per run
        self._think: list[str] = []  # reasoning of one rollout not yet emitted: one ReasoningDelta
        self._agent: Any = ""  # the rollout of `_think`
        self._streamed: list[str] = []  # raw answer tokens, to reconcile with F11
        self._images: set[str] = set()  # final images already emitted
        self._sources: set[str] = set()  # search result URLs already emitted
        self._fast = TokenLines(EVENT_KEYS)
        self._content = False
        self._html = False
        self._model_response = False
        self.conversation_id = ""
        self.response_id = ""
        self.done = False

    # --- bytes -> lines ---------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[Event]:
        out: list[Event] = []
        if self.done or not chunk:
            return out
        start = 0
        if self._parts:
            nl = chunk.find(b"\n")
            if nl >= 0:
                self._parts.append(chunk[:nl])
                line = b"".join(self._parts)
                self._parts.clear()
                self._pending = 0
                self._fast.line(self, line, out)
                start = nl + 1
        end = chunk.rfind(b"\n") + 1  # the complete lines are chunk[start:end]
        if start < end and not self.done:
            self._fast.read(self, chunk, start, end, out)
        if not self.done and max(start, end) < len(chunk):
            start = max(start, end)
            self._pending += len(chunk) - start
            if self._pending > self._max_line:
                self._end(
                    out,
                    _fault(UpstreamFailure(Kind.TRANSIENT, f"a stream line exceeded {self._max_line} bytes")),
                )
            else:
                self._parts.append(chunk[start:] if start else chunk)
        self.close_runs(out)
        return out

    # --- what the fast path (token_lines.py) hands over -----------------------------------------

    @property
    def holding(self) -> bool:
        """An answer tag is open in the renderer: answer tokens must come one by one."""
        return self._renderer.holding

    def emit_tokens(self, tokens: list[str], frame: Template, out: list[Event]) -> None:
        """What `_frame` makes of these tokens, each on `frame` (an answer or a thinking token)."""
        self._content = True
        if frame.thinking:
            if self._run:
                self._text(out)
            agent = frame.agent
            if self._think and agent != self._agent:
                self._reasoning(out)
            self._agent = agent
            self._think.extend(tokens)
            return
        text = tokens[0] if len(tokens) == 1 else "".join(tokens)
        if "<" not in text and not self._renderer.holding:
            self._plain(text, out)
            return
        # Tokens that may hold a tag go through the renderer one by one, the others together.
        tagged = list(map(str.__contains__, tokens, repeat("<")))
        tagged.append(True)
        at = 0
        while at < len(tokens):
            if tagged[at] or self._renderer.holding:
                self._answer(tokens[at], out)
                at += 1
            else:
                stop = tagged.index(True, at)
                self._plain("".join(tokens[at:stop]), out)
                at = stop

    def _plain(self, text: str, out: list[Event]) -> None:
        """Answer text with no tag in it, while the renderer holds nothing: `_answer`, shorter."""
        if self._think:
            self._reasoning(out)
        self._streamed.append(text)
        self._run.append(text)

    def decode_line(self, line: bytes, out: list[Event]) -> dict[str, Any] | None:
        """One line the line-by-line way; the frame, when the line was one bare JSON object."""
        if line[:1] == b"{" and line[-1:] == b"}":  # the common case: one bare object, no strip
            try:
                frame = orjson.loads(line)
            except orjson.JSONDecodeError:
                return None  # a malformed line is skipped; the end rules still guard the stream
            if type(frame) is dict:
                self._frame(frame, out)
                return frame
            return None
        self._line(line, out)
        return None

    def flush(self) -> list[Event]:
        """The upstream closed the stream: decode the last line, then apply the end rules."""
        out: list[Event] = []
        if self.done:
            return out
        if self._parts:
            line = b"".join(self._parts)
            self._parts.clear()
            self._line(line, out)
            if self.done:
                return out
        if self._model_response and self._content:
            self._end(out, Finish())
        elif self._content:
            self._end(out, _fault(truncated_stream()))
        elif self._html:
            self._end(
                out, _fault(UpstreamFailure(Kind.CHALLENGE, "HTTP 200 with an HTML page instead of a stream"))
            )
        else:
            self._end(out, _fault(empty_stream()))
        return out

    def _line(self, line: bytes, out: list[Event]) -> None:
        line = line.strip()
        if not line:
            return
        if line[0] != 0x7B:  # "{"
            if line.startswith(b"data:"):
                line = line[5:].lstrip()
                if line == b"[DONE]":
                    self._stop(out)
                    return
                if not line.startswith(b"{"):
                    return
            elif line.startswith(_SKIP_PREFIXES):
                return
            else:
                if line.startswith(b"<"):
                    self._html = True
                return
        try:
            frame = orjson.loads(line)
        except orjson.JSONDecodeError:
            return  # a malformed line is skipped; the end rules still guard the stream
        if isinstance(frame, dict):
            self._frame(frame, out)

    # --- frames -> events -------------------------------------------------------------------

    def _frame(self, frame: dict[str, Any], out: list[Event]) -> None:
        result = frame.get("result")
        if not isinstance(result, dict):
            error = frame.get("error")
            if error:
                self._end(out, _fault(classify_inband(error)))
            return
        response = result.get("response")
        if not isinstance(response, dict):
            conversation = result.get("conversation")
            if isinstance(conversation, dict):
                self.conversation_id = str(conversation.get("conversationId") or "")
            error = result.get("error")
            if error:
                self._end(out, _fault(classify_inband(error)))
            return
        token = response.get("token")
        if token and isinstance(token, str):
            tag = response.get("messageTag")
            if (not tag or tag == "final") and not response.get("isThinking"):
                self._answer(token, out)
                return  # an F12 on an answer token is text, not the stop
            if self._run:
                self._text(out)
            if tag == "tool_usage_card":
                name, args = frame_fields.tool_use(response, token)
                if name:
                    self.server_tool(name, args, out)
            elif tag == "raw_function_result":
                pass
            elif response.get("isThinking"):
                self.thinking(token, response.get("rolloutId") or "", out)
        elif self._run:
            self._text(out)
        self._other(response, out)

    def _answer(self, token: str, out: list[Event]) -> None:
        self._content = True
        self._streamed.append(token)
        if "<" not in token and not self._renderer.holding:
            if self._think:
                self._reasoning(out)
            self._run.append(token)
            return
        citations: list[Citation] = []
        text = self._renderer.feed(token, citations)
        if text:
            if self._think:
                self._reasoning(out)
            self._run.append(text)
        if citations:
            self._text(out)
            out.extend(citations)

    def _text(self, out: list[Event]) -> None:
        run = self._run
        out.append(TextDelta(run[0] if len(run) == 1 else "".join(run)))
        run.clear()

    def _reasoning(self, out: list[Event]) -> None:
        think = self._think
        out.append(ReasoningDelta(think[0] if len(think) == 1 else "".join(think), self._agent))
        think.clear()

    # --- the answer's state, also driven by the gateway WebSocket decoder (gateway_frames.py) ---

    answer = _answer

    def thinking(self, token: str, agent: Any, out: list[Event]) -> None:
        """A reasoning token of rollout `agent`; a change of rollout closes the run before it."""
        self._content = True
        if self._think and agent != self._agent:
            self._reasoning(out)
        self._agent = agent
        self._think.append(token)

    def server_tool(self, name: str, args: dict[str, Any], out: list[Event]) -> None:
        self._content = True
        if self._think:
            self._reasoning(out)
        out.append(ServerToolUse(name, args))

    def cite(self, url: str, out: list[Event]) -> None:
        """A citation at the current text position: its mark joins the answer, then the event."""
        citations: list[Citation] = []
        self._run.append(self._renderer.cite(url, citations))
        if citations:
            self._text(out)
            out.extend(citations)

    def close_runs(self, out: list[Event]) -> None:
        """Emit the text or reasoning gathered so far (the end of one read)."""
        if self._run:
            self._text(out)
        elif self._think:
            self._reasoning(out)

    def stop(self, out: list[Event]) -> None:
        self._stop(out)

    def end(self, out: list[Event], last: Event) -> None:
        self._end(out, last)

    def search_results(self, items: Any, out: list[Event]) -> None:
        self._search_results(items, out)

    def card(self, card: Any, out: list[Event]) -> None:
        self._card(card, out)

    def _other(self, response: dict[str, Any], out: list[Event]) -> None:
        error = response.get("error")
        if error:
            self._end(out, _fault(classify_inband(error)))
            return
        user = response.get("userResponse")
        if isinstance(user, dict):
            return
        for key in SEARCH_KEYS:
            if key in response:
                self._search_results(response[key], out)
        card = response.get("cardAttachment")
        if card is not None:
            self._card(card, out)
        cards = response.get("cardAttachments")
        if isinstance(cards, list):
            for item in cards:
                self._card(item, out)
        image = response.get("streamingImageGenerationResponse")
        if isinstance(image, dict):
            self._image(image, out)
        video = response.get("streamingVideoGenerationResponse")
        if isinstance(video, dict):
            self._video(video, out)
        model = response.get("modelResponse")
        if isinstance(model, dict):
            self._model(model, out)
            if self.done:
                return
        if response.get("isSoftStop") or response.get("finalMetadata"):
            self._stop(out)

    def _search_results(self, value: Any, out: list[Event]) -> None:
        items = value.get("results") if isinstance(value, dict) else value
        if not isinstance(items, list):
            return
        found: list[tuple[str, str]] = []
        for item in items:
            if isinstance(item, dict):
                url, title = frame_fields.source(item)
                self._renderer.add_title(url, title)
                if url and url not in self._sources:
                    self._sources.add(url)
                    found.append((url, title))
        if found:
            self.close_runs(out)
            out.append(SearchResults(tuple(found)))

    def _card(self, card: Any, out: list[Event]) -> None:
        data = card.get("jsonData", card) if isinstance(card, dict) else card
        if isinstance(data, str):
            try:
                data = orjson.loads(data)
            except orjson.JSONDecodeError:
                return
        if not isinstance(data, dict):
            return
        self._renderer.add_card(data)
        chunk = data.get("image_chunk") or data.get("imageChunk")
        if isinstance(chunk, dict):
            self._image(chunk, out, str(data.get("id") or ""))

    def _image(self, fields: dict[str, Any], out: list[Event], card_id: str = "") -> None:
        image = frame_fields.image(fields, self._assets, card_id)
        if image is None:
            return
        if image.final:
            if image.id in self._images:
                return
            self._images.add(image.id)
        self._content = True
        if self._think:
            self._reasoning(out)
        out.append(image)

    def _video(self, fields: dict[str, Any], out: list[Event]) -> None:
        self._content = True
        video = frame_fields.video(fields, self._assets)
        if self._think:
            self._reasoning(out)
        out.append(video)

    def _model(self, model: dict[str, Any], out: list[Event]) -> None:
        self._model_response = True
        self.response_id = str(model.get("responseId") or self.response_id)
        errors = model.get("streamErrors")
        if isinstance(errors, list) and errors:
            self._end(out, _fault(classify_inband(errors[0])))
            return
        message = model.get("message")
        if isinstance(message, str) and message:
            streamed = "".join(self._streamed)
            if not streamed:
                self._answer(message, out)
            elif len(message) > len(streamed) and message.startswith(streamed):
                self._answer(message[len(streamed) :], out)
        for path in model.get("generatedImageUrls") or ():
            if isinstance(path, str):
                self._image({"imageUrl": path, "progress": 100}, out)
        for key in SEARCH_KEYS:
            if key in model:
                self._search_results(model[key], out)

    # --- the end ----------------------------------------------------------------------------

    def _stop(self, out: list[Event]) -> None:
        if not self._content:
            self._end(out, _fault(empty_stream()))
            return
        self._end(out, Finish())

    def _end(self, out: list[Event], last: Event) -> None:
        if self._think:
            self._reasoning(out)
        if isinstance(last, Finish):
            rest = self._renderer.flush()
            if rest:
                self._run.append(rest)
        if self._run:
            self._text(out)
        out.append(last)
        self.done = True
        self._parts.clear()
