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
its token. Such a line teaches the decoder its bytes around the token (a template, `_learn`);
a run of lines made of those bytes around string literals is decoded with one parse of the
literals (`_bulk`, `_tokens`), with the events the line-by-line path gives. Anything else, and
any doubt, takes the line-by-line path.
"""

from __future__ import annotations

from io import BytesIO
from itertools import repeat
from operator import and_, getitem, le
from typing import Any, NamedTuple, cast

import orjson

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
    VideoOut,
)
from core.protocol.classify import Kind, UpstreamFailure, classify_inband, empty_stream, truncated_stream
from core.protocol.render import Renderer

MAX_LINE = 8 * 1024 * 1024

_TOOL_NAMES = {
    "webSearch": "web_search",
    "xSearch": "x_search",
    "xKeywordSearch": "x_keyword_search",
    "xSemanticSearch": "x_semantic_search",
    "browsePage": "browse_page",
    "searchImages": "search_images",
    "imageSearch": "search_images",
    "chatroomSend": "chatroom_send",
    "codeExecution": "code_execution",
}
_SKIP_PREFIXES = (b"event:", b"id:", b"retry:", b":")
# Where search results travel (F7, F11): web pages, and X posts (F7).
SEARCH_KEYS = ("webSearchResults", "citedWebSearchResults", "xSearchResults", "xposts", "citedXposts")
# Every key `_other` reads but isSoftStop: a thinking token frame with one of them is not a template.
_OTHER_KEYS = frozenset(
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
_SENTINEL = b'"\\u0000"'  # the token "\x00" as orjson writes it
_BULK = 3  # shorter runs of a template are decoded line by line


def _fault(failure: UpstreamFailure) -> Fault:
    return Fault(failure.to_error(), failure)


def _source(item: dict[str, Any]) -> tuple[str, str]:
    """(url, title) of one search result: a web page, or an X post (its URL built from the
    author and the post id; the start of its text as the title)."""
    url = str(item.get("url") or "")
    title = str(item.get("title") or "")
    post = item.get("postId") or item.get("post_id")
    user = item.get("username") or item.get("userhandle")
    if not url and post and user:
        url = f"https://x.com/{user}/status/{post}"
    if not title and post:
        text = " ".join(str(item.get("text") or "").split())
        title = f"@{user}: {text[:80]}" if text else f"@{user}"
    return url, title


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


class _Template(NamedTuple):
    """The bytes of a token line around its token: every line `prefix + literal + suffix` is the
    same frame as the one it was learned from, with only the token changed (see `_learn`)."""

    prefix: bytes  # up to and including the token's opening quote
    suffix: bytes  # from the token's closing quote to the end of the line
    sep: bytes  # suffix + newline + prefix: what lies between two tokens in a run of such lines
    end: bytes  # suffix + newline
    thinking: bool
    agent: Any  # the rolloutId of a thinking template


class FrameDecoder:
    """One upstream chat stream. Attributes after decoding: `conversation_id`, `response_id`."""

    __slots__ = (
        "_agent",
        "_assets",
        "_content",
        "_hits",
        "_html",
        "_images",
        "_learning",
        "_learns",
        "_max_line",
        "_misses",
        "_model_response",
        "_parts",
        "_pending",
        "_renderer",
        "_run",
        "_sources",
        "_streamed",
        "_templates",
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
        self._templates: list[_Template] = []  # most recent first
        self._learning = True
        self._learns = 0
        self._misses = 0
        self._hits = 0
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
                self._one(line, out)
                start = nl + 1
        end = chunk.rfind(b"\n") + 1  # the complete lines are chunk[start:end]
        if start < end and not self.done:
            self._lines(chunk, start, end, out)
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

    def _lines(self, chunk: bytes, pos: int, end: int, out: list[Event]) -> None:
        """Decode the complete lines chunk[pos:end]; a run of lines of one template at once."""
        find = chunk.find
        while pos < end:
            if not self._templates:  # line by line, until a template is learned
                while pos < end:
                    nl = find(b"\n", pos)
                    line = chunk[pos:nl]
                    pos = nl + 1
                    self._bare(line, out)  # a few lines per stream, until a template is learned
                    if self.done:
                        return
                    if self._templates:
                        break
                continue
            nl = find(b"\n", pos)
            if nl == end - 1:  # one line (a token written on its own): no run to read at once
                self._one(chunk[pos:nl], out)
                return
            tpl = None
            for candidate in self._templates:
                if chunk.startswith(candidate.prefix, pos):
                    tpl = candidate
                    break
            last = chunk.rfind(tpl.end, pos, end) if tpl is not None else -1
            if tpl is None or last < 0:
                self._one(chunk[pos:nl], out)
                pos = nl + 1
            else:
                stop = last + len(tpl.end)
                self._bulk(chunk, pos, stop, tpl, out)
                pos = stop
            if self.done:
                return

    def _bulk(self, chunk: bytes, pos: int, stop: int, tpl: _Template, out: list[Event]) -> None:
        """The lines chunk[pos:stop], from one of `tpl` to the last one in this read: as one run,
        or as several among other lines.

        The lines are read at memchr speed (`BytesIO.readlines`, no copy of the chunk) and their
        literals sliced; `prefix + sep.join(literals) + end` equal to the bytes read proves every
        line is one of `tpl` (no literal holds a newline). One comparison, no pass that scans the
        read byte by byte.
        """
        prefix, end = tpl.prefix, tpl.end
        reader = BytesIO(chunk)
        if pos:
            reader.seek(pos)
        lines = reader.readlines(stop - pos)
        literals = cast("list[bytes]", list(map(getitem, lines, repeat(slice(len(prefix), -len(end))))))
        expected = tpl.sep.join(literals)
        if len(expected) == stop - pos - len(prefix) - len(end) and chunk.startswith(
            expected, pos + len(prefix)
        ):
            if len(literals) < _BULK or not self._tokens(literals, tpl, out):
                self._each([line[:-1] for line in lines], out)
            return
        # Other lines among them: find the lines of `tpl` one by one, at C speed.
        suffix = tpl.suffix
        lines = chunk[pos:stop].split(b"\n")
        lines.pop()
        literals = cast("list[bytes]", list(map(getitem, lines, repeat(slice(len(prefix), -len(suffix))))))
        good = list(
            map(
                and_,
                map(
                    and_,
                    map(bytes.startswith, lines, repeat(prefix)),
                    map(bytes.endswith, lines, repeat(suffix)),
                ),
                map(le, repeat(len(prefix) + len(suffix)), map(len, lines)),
            )
        )
        good.append(False)
        at = 0
        while at < len(lines) and not self.done:
            if good[at]:
                stop = good.index(False, at)
                if stop - at < _BULK or not self._tokens(literals[at:stop], tpl, out):
                    self._each(lines[at:stop], out)
                at = stop
            else:
                self._one(lines[at], out)
                at += 1

    def _each(self, lines: list[bytes], out: list[Event]) -> None:
        for line in lines:
            self._one(line, out)
            if self.done:
                return

    def _tokens(self, literals: list[bytes], tpl: _Template, out: list[Event]) -> bool:
        """The tokens of a run of lines of `tpl`, decoded in one parse.

        Each literal must be a whole JSON string body on its own: no unescaped quote, no escape
        left open at its end. Then the joined literals parse as a list of exactly these strings.
        Otherwise (or on an empty token, which is no token: see `_frame`) False, and the lines are
        decoded one by one.

        Plain ASCII literals with no quote and no backslash are each a whole string body, and so
        is their concatenation: it parses as the concatenated tokens, all the events need unless
        a tag may be in them (`_emit`).
        """
        if not all(literals):
            return False  # an empty token is no token
        cat = b"".join(literals)
        if cat.isascii() and b"\\" not in cat and b'"' not in cat:
            try:
                text = orjson.loads(b'"' + cat + b'"')
            except orjson.JSONDecodeError:
                return False  # a control character: the lines one by one
            if tpl.thinking or ("<" not in text and not self._renderer.holding):
                self._hits += len(literals)
                self._emit([text], tpl, out)
                return True
        joined = b'","'.join(literals)
        if b"\\" in joined:
            unpaired = joined.replace(b"\\\\", b"")  # what is left of a backslash starts an escape
            if b'\\","' in unpaired or unpaired.endswith(b"\\"):
                return False
            quotes = unpaired.replace(b'\\"', b"").count(b'"')
        else:
            quotes = joined.count(b'"')
        if quotes != 2 * (len(literals) - 1):
            return False
        try:
            tokens = orjson.loads(b'["' + joined + b'"]')
        except orjson.JSONDecodeError:
            return False
        if len(tokens) != len(literals) or not all(tokens):
            return False
        self._hits += len(tokens)
        self._emit(tokens, tpl, out)
        return True

    def _emit(self, tokens: list[str], tpl: _Template, out: list[Event]) -> None:
        """What `_frame` makes of these tokens, each on the template's frame."""
        self._content = True
        if tpl.thinking:
            if self._run:
                self._text(out)
            if self._think and tpl.agent != self._agent:
                self._reasoning(out)
            self._agent = tpl.agent
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

    def _one(self, line: bytes, out: list[Event]) -> None:
        """One line, which may be of a template."""
        for tpl in self._templates:
            if (
                len(line) >= len(tpl.prefix) + len(tpl.suffix)
                and line.startswith(tpl.prefix)
                and line.endswith(tpl.suffix)
            ):
                literal = line[len(tpl.prefix) - 1 : len(line) - len(tpl.suffix) + 1]
                try:
                    token = orjson.loads(literal)
                except orjson.JSONDecodeError:
                    continue  # not one JSON string there: not this template's line
                if token:
                    self._hits += 1
                    self._emit([token], tpl, out)
                    return
                break  # an empty token is no token (`_frame`)
        self._bare(line, out)

    def _bare(self, line: bytes, out: list[Event]) -> None:
        if line[:1] == b"{" and line[-1:] == b"}":  # the common case: one bare object, no strip
            try:
                frame = orjson.loads(line)
            except orjson.JSONDecodeError:
                return  # a malformed line is skipped; the end rules still guard the stream
            if type(frame) is dict:
                self._frame(frame, out)
                if self._learning and not self.done:
                    self._learn(frame, line)
        else:
            self._line(line, out)

    def _learn(self, frame: dict[str, Any], line: bytes) -> None:
        """Keep the bytes around the token of a plain answer or thinking token line.

        The frame is dumped again with the token replaced by a sentinel; the bytes before and
        after it are the template. A later line made of those bytes around another string literal
        is the same frame with another token, so it gives the same events: the token as answer
        text, or as reasoning of the same rollout. A thinking frame qualifies only when nothing
        else in it makes events (`_other`). The decoder stops learning (and drops its templates)
        when they do not pay: after eight lines not in orjson's form (spaces, other escaping), or
        when templates are learned but hardly reused (a field that changes on every line).
        """
        result = frame.get("result")
        if type(result) is not dict:
            return
        response = result.get("response")
        if type(response) is not dict:
            return
        token = response.get("token")
        if not token or type(token) is not str:
            return
        tag = response.get("messageTag")
        agent: Any = ""
        if (not tag or tag == "final") and not response.get("isThinking"):
            thinking = False
        elif (
            tag == "tool_usage_card"
            or tag == "raw_function_result"
            or not response.get("isThinking")
            or response.get("isSoftStop")
            or not _OTHER_KEYS.isdisjoint(response)
        ):
            return
        else:
            thinking = True
            agent = response.get("rolloutId") or ""
        try:
            dumped = orjson.dumps({**frame, "result": {**result, "response": {**response, "token": "\x00"}}})
        except orjson.JSONEncodeError:
            return
        at = dumped.find(_SENTINEL)
        if at < 0 or dumped.rfind(_SENTINEL) != at:
            return
        prefix, suffix = dumped[: at + 1], dumped[at + len(_SENTINEL) - 1 :]
        if b"\\" in prefix or b"\\" in suffix:
            return
        if not (line.startswith(prefix) and line.endswith(suffix)):
            self._misses += 1
            if self._misses >= 8:  # the upstream writes JSON some other way: no fast path
                self._learning = False
            return
        if self._learns >= 8 and self._hits < 4 * self._learns:  # templates are not reused
            self._learning = False
            self._templates.clear()
            return
        sep = suffix + b"\n" + prefix
        self._templates.insert(0, _Template(prefix, suffix, sep, suffix + b"\n", thinking, agent))
        del self._templates[4:]
        self._learns += 1

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
                self._tool_card(response, token, out)
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

    def _tool_card(self, response: dict[str, Any], token: str, out: list[Event]) -> None:
        card = response.get("toolUsageCard")
        name = ""
        args: dict[str, Any] = {}
        if isinstance(card, dict):
            for key, value in card.items():
                if key != "toolUsageCardId":
                    name = _TOOL_NAMES.get(key) or _snake(key)
                    if isinstance(value, dict) and isinstance(value.get("args"), dict):
                        args = value["args"]
                    break
        if not name:
            start = token.find("<xai:tool_name>")
            end = token.find("</xai:tool_name>")
            if start >= 0 and end > start:
                name = token[start + 15 : end].replace("<![CDATA[", "").replace("]]>", "").strip()
        if name:
            self.server_tool(name, args, out)

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
                url, title = _source(item)
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

    def _image(self, image: dict[str, Any], out: list[Event], card_id: str = "") -> None:
        path = image.get("imageUrl") or image.get("image_url") or image.get("url")
        if not isinstance(path, str) or not path:
            return
        progress = int(image.get("progress") or 0)
        final = progress >= 100 or bool(image.get("isFinal"))
        moderated = bool(image.get("moderated"))
        url = path if path.startswith(("http://", "https://")) else self._assets + path.lstrip("/")
        image_id = str(image.get("imageUuid") or image.get("assetId") or card_id or url)
        if final:
            if image_id in self._images:
                return
            self._images.add(image_id)
        self._content = True
        if self._think:
            self._reasoning(out)
        out.append(ImageOut(url, progress=min(progress, 100), final=final, moderated=moderated, id=image_id))

    def _video(self, video: dict[str, Any], out: list[Event]) -> None:
        self._content = True
        url = video.get("videoUrl") or ""
        if url and not url.startswith(("http://", "https://")):
            url = self._assets + url.lstrip("/")
        thumb = video.get("thumbnailImageUrl") or ""
        if thumb and not thumb.startswith(("http://", "https://")):
            thumb = self._assets + thumb.lstrip("/")
        if self._think:
            self._reasoning(out)
        out.append(
            VideoOut(
                int(video.get("progress") or 0),
                url=url,
                thumbnail_url=thumb,
                post_id=str(video.get("videoPostId") or ""),
                moderated=bool(video.get("moderated")),
                video_id=str(video.get("videoId") or ""),
            )
        )

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
