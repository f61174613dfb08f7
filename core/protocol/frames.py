"""Grok's chat stream: bytes -> lines -> frames -> `core.events`, pure and incremental.

`FrameDecoder.feed(chunk)` returns the events that chunk completed; `flush()` is called at EOF.
No I/O: the transport only loops and feeds (httpx's decoders, openai's SSE decoder).

Lines (protocol §3.5): NDJSON, though `data:` prefixes, `event:`/`id:`/comment lines, blank
lines and CRLF are tolerated; a line may be split across any number of chunks and may be up to
8 MiB. Frames (§3.6): F1 conversation, F2 user response, F3 answer token, F4 thinking, F5 tool
card, F6 raw function result (skipped), F7 search results, F8 card attachment (citations,
searched and generated images), F9 streaming image, F10 streaming video, F11 model response,
F12 soft stop, F13 final metadata, F14 in-band errors (top level, nested, `streamErrors`).

The end (§3.9): the first F12 or F13, or `data: [DONE]`; an F12 that rides on an answer token
is text, not the stop. Nothing is read after the end. An end with no answer is an empty stream,
EOF without an end marker (and without an F11) is a truncated stream, and an HTML body is a
challenge: all three become `Fault` events, so no stream ends silently.
"""

from __future__ import annotations

from typing import Any

import orjson

from core.events import (
    Citation,
    Event,
    Fault,
    Finish,
    ImageOut,
    ReasoningDelta,
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


def _fault(failure: UpstreamFailure) -> Fault:
    return Fault(failure.to_error(), failure)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


class FrameDecoder:
    """One upstream chat stream. Attributes after decoding: `conversation_id`, `response_id`."""

    __slots__ = (
        "_assets",
        "_content",
        "_html",
        "_images",
        "_max_line",
        "_model_response",
        "_parts",
        "_pending",
        "_renderer",
        "_run",
        "_streamed",
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
        self._streamed: list[str] = []  # raw answer tokens, to reconcile with F11
        self._images: set[str] = set()  # final images already emitted
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
        find = chunk.find
        loads = orjson.loads
        JSONDecodeError = orjson.JSONDecodeError
        while not self.done:
            nl = find(b"\n", start)
            if nl < 0:
                break
            if self._parts:
                self._parts.append(chunk[start:nl])
                line = b"".join(self._parts)
                self._parts.clear()
                self._pending = 0
            else:
                line = chunk[start:nl]
            if line[:1] == b"{" and line[-1:] == b"}":  # the common case: one bare object, no strip
                try:
                    frame = loads(line)
                except JSONDecodeError:
                    frame = None  # a malformed line is skipped; the end rules still guard the stream
                if type(frame) is dict:
                    self._frame(frame, out)
            else:
                self._line(line, out)
            start = nl + 1
        if not self.done and start < len(chunk):
            self._pending += len(chunk) - start
            if self._pending > self._max_line:
                self._end(
                    out,
                    _fault(UpstreamFailure(Kind.TRANSIENT, f"a stream line exceeded {self._max_line} bytes")),
                )
            else:
                self._parts.append(chunk[start:] if start else chunk)
        if self._run:
            self._text(out)
        return out

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
        if self._run:
            self._text(out)
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
                self._content = True
                out.append(ReasoningDelta(token, response.get("rolloutId") or ""))
        elif self._run:
            self._text(out)
        self._other(response, out)

    def _answer(self, token: str, out: list[Event]) -> None:
        self._content = True
        self._streamed.append(token)
        if "<" not in token and not self._renderer.holding:
            self._run.append(token)
            return
        citations: list[Citation] = []
        text = self._renderer.feed(token, citations)
        if text:
            self._run.append(text)
        if citations:
            self._text(out)
            out.extend(citations)

    def _text(self, out: list[Event]) -> None:
        run = self._run
        out.append(TextDelta(run[0] if len(run) == 1 else "".join(run)))
        run.clear()

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
            self._content = True
            out.append(ServerToolUse(name, args))

    def _other(self, response: dict[str, Any], out: list[Event]) -> None:
        error = response.get("error")
        if error:
            self._end(out, _fault(classify_inband(error)))
            return
        user = response.get("userResponse")
        if isinstance(user, dict):
            return
        for key in ("webSearchResults", "citedWebSearchResults"):
            if key in response:
                self._search_results(response[key])
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

    def _search_results(self, value: Any) -> None:
        items = value.get("results") if isinstance(value, dict) else value
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict):
                    self._renderer.add_title(str(item.get("url") or ""), str(item.get("title") or ""))

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
        out.append(ImageOut(url, progress=min(progress, 100), final=final, moderated=moderated, id=image_id))

    def _video(self, video: dict[str, Any], out: list[Event]) -> None:
        self._content = True
        url = video.get("videoUrl") or ""
        if url and not url.startswith(("http://", "https://")):
            url = self._assets + url.lstrip("/")
        thumb = video.get("thumbnailImageUrl") or ""
        if thumb and not thumb.startswith(("http://", "https://")):
            thumb = self._assets + thumb.lstrip("/")
        out.append(
            VideoOut(
                int(video.get("progress") or 0),
                url=url,
                thumbnail_url=thumb,
                post_id=str(video.get("videoPostId") or ""),
                moderated=bool(video.get("moderated")),
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
        for key in ("webSearchResults", "citedWebSearchResults"):
            if key in model:
                self._search_results(model[key])

    # --- the end ----------------------------------------------------------------------------

    def _stop(self, out: list[Event]) -> None:
        if not self._content:
            self._end(out, _fault(empty_stream()))
            return
        self._end(out, Finish())

    def _end(self, out: list[Event], last: Event) -> None:
        if isinstance(last, Finish):
            rest = self._renderer.flush()
            if rest:
                self._run.append(rest)
        if self._run:
            self._text(out)
        out.append(last)
        self.done = True
        self._parts.clear()
