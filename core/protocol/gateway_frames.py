"""The chat gateway WebSocket (E3, docs/protocol.md "Chat over the gateway WebSocket"), pure.

Two halves, no I/O:

* builders of the client messages of one turn (`session_create`, `item_create`,
  `response_create`, `ping`), taken from the same normalised body the REST call sends, so the
  service builds one body whatever the transport;
* `GatewayDecoder`, which turns the server's messages into the same `core.events` as the REST
  `FrameDecoder`, with the same `feed(chunk)` / `flush()` contract. The adapter hands it the
  socket's text messages one per line (a JSON message holds no raw newline that matters: any
  newline in it is whitespace between tokens), so a chunk may hold several messages, or part
  of one.

The decoder keeps its answer state in a `FrameDecoder` (text runs, reasoning runs, citation
numbering, images, the end rules): a WebSocket event is the same fact as a REST frame in another
envelope, and one state machine keeps the two transports' events identical.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from core.events import Event, Fault
from core.protocol.classify import UpstreamFailure, classify_inband, truncated_stream
from core.protocol.frames import MAX_LINE, FrameDecoder

GATEWAY_PATH = "/ws/mgw/"
CAPABILITIES = ("conversation_attached", "custom_methods_v1")
ANSWER_CHANNEL = "CHANNEL_ASSISTANT_RESPONSE"
_TOOLS = {"web_search": "web_search", "x_search": "x_search", "webSearch": "web_search"}


class ChatDecoder(Protocol):
    """What the chat service reads a stream with: `FrameDecoder` (REST) or `GatewayDecoder`."""

    @property
    def done(self) -> bool: ...

    def feed(self, chunk: bytes) -> list[Event]: ...

    def flush(self) -> list[Event]: ...


def decoder_for(stream: object, assets_url: str) -> ChatDecoder:
    """The decoder of an upstream stream: its `wire` says which transport wrote it (REST if none)."""
    if getattr(stream, "wire", "rest") == "ws":
        return GatewayDecoder(assets_url=assets_url)
    return FrameDecoder(assets_url=assets_url)


def gateway_url(upstream_url: str, user_id: str) -> str:
    """`wss://host/ws/mgw/?uid=…` for an `https://host` upstream (`ws://` for plain http)."""
    if upstream_url.startswith("https://"):
        base = "wss://" + upstream_url[8:]
    elif upstream_url.startswith("http://"):
        base = "ws://" + upstream_url[7:]
    else:
        base = upstream_url
    return f"{base.rstrip('/')}{GATEWAY_PATH}?uid={user_id}"


def session_create(body: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The first message of a new, temporary conversation in `body`'s mode (`evt_init_<uuid>`)."""
    x_grok = {
        "protocol_capabilities": list(CAPABILITIES),
        "use_chunk": True,
        "enable_side_by_side": bool(body.get("enableSideBySide", True)),
        "force_side_by_side": bool(body.get("forceSideBySide", False)),
        "enable_image_generation": bool(body.get("enableImageGeneration", True)),
        "image_generation_count": int(body.get("imageGenerationCount", 2)),
        "disable_text_follow_ups": bool(body.get("disableTextFollowUps", False)),
        "disable_artifact": True,
        "force_concise": bool(body.get("forceConcise", False)),
        "keep_context": False,
        "is_temporary": bool(body.get("temporary", True)),
        "disable_memory": bool(body.get("disableMemory", True)),
    }
    return {
        "event": {
            "type": "session.create",
            "event_id": event_id,
            "session": {"model": body["modeId"], "x_grok": x_grok},
        }
    }


def item_create(session_id: str, body: dict[str, Any], message_id: str, millis: int) -> dict[str, Any]:
    """The user's turn: one mention chunk per uploaded file, then the whole prompt as one text chunk."""
    files = [str(f) for f in body.get("fileAttachments") or ()]
    chunks: list[dict[str, Any]] = [{"mention": {"target": {"file_mention": {"file_id": f}}}} for f in files]
    chunks.append({"text": {"text": body["message"]}})
    item: dict[str, Any] = {
        "type": "message",
        "role": "user",
        "x_grok": {"client_message_id": message_id, "input_chunks": chunks},
    }
    event: dict[str, Any] = {
        "type": "conversation.item.create",
        "event_id": f"evt_msg_{millis}",
        "item": item,
    }
    if files:
        item["file_attachment_ids"] = files
        event["file_attachment_ids"] = files
    return {"session_id": session_id, "event": event}


def response_create(session_id: str, millis: int) -> dict[str, Any]:
    """Sent right after the item, with the same millisecond stamp."""
    return {"session_id": session_id, "event": {"type": "response.create", "event_id": f"evt_resp_{millis}"}}


def ping(millis: int) -> dict[str, Any]:
    return {"event": {"type": "ping", "event_id": f"evt_hb_{millis}"}}


def handshake_step(message: dict[str, Any], event_id: str) -> tuple[str, str]:
    """What one server message before the turn says: ("created" | "attached" | "error" | "other",
    the session id, or the error's text). The adapter sends the turn once it saw both."""
    event = message.get("event")
    if not isinstance(event, dict):
        return "other", ""
    kind = event.get("type")
    if kind == "session.created" and event.get("client_event_id") == event_id:
        return "created", str(message.get("session_id") or "")
    if kind == "conversation.attached":
        conversation = event.get("conversation")
        cid = conversation.get("id") if isinstance(conversation, dict) else None
        return "attached", str(cid or "")
    if kind == "error":
        return "error", orjson.dumps(event.get("error")).decode()
    return "other", ""


def handshake_failure(text: str) -> UpstreamFailure:
    """An `error` event (its JSON) before the turn started: classified like an in-band error."""
    try:
        error: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        error = text
    return classify_inband(error if error is not None else "gateway error before the turn")


class GatewayDecoder:
    """One turn's server messages -> events; `feed` and `flush` as `FrameDecoder` has them."""

    __slots__ = ("_parts", "_rest", "_saw_delta")

    def __init__(self, *, assets_url: str = "https://assets.grok.com") -> None:
        self._rest = FrameDecoder(assets_url=assets_url)
        self._parts: list[bytes] = []
        self._saw_delta = False

    @property
    def done(self) -> bool:
        return self._rest.done

    @property
    def response_id(self) -> str:
        return self._rest.response_id

    def feed(self, chunk: bytes) -> list[Event]:
        out: list[Event] = []
        if self._rest.done:
            return out
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            piece = chunk[start:end]
            if self._parts:
                self._parts.append(piece)
                piece = b"".join(self._parts)
                self._parts.clear()
            self._message(piece, out)
            if self._rest.done:
                return out
            start = end + 1
        if start < len(chunk):
            self._parts.append(chunk[start:])
            if sum(map(len, self._parts)) > MAX_LINE:
                self._parts.clear()
                self._rest.end(out, _fault(truncated_stream("a gateway message over the size limit")))
        rest = self._rest
        rest.close_runs(out)
        return out

    def flush(self) -> list[Event]:
        """The socket closed: a last message, then the end rules (no `response.done` is an error)."""
        out: list[Event] = []
        if self._rest.done:
            return out
        if self._parts:
            line = b"".join(self._parts)
            self._parts.clear()
            self._message(line, out)
            if self._rest.done:
                return out
        self._rest.end(out, _fault(truncated_stream("the gateway socket closed before response.done")))
        return out

    def _message(self, line: bytes, out: list[Event]) -> None:
        line = line.strip()
        if not line:
            return
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            return  # a malformed message is skipped; the end rules still guard the turn
        event = message.get("event") if isinstance(message, dict) else None
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        rest = self._rest
        if kind == "response.chunk":
            chunk = event.get("chunk")
            if isinstance(chunk, dict):
                self._chunk(chunk, out)
        elif kind == "response.output_text.delta":
            delta = event.get("delta")
            if isinstance(delta, str) and delta:
                self._saw_delta = True
                rest.answer(delta, out)
        elif kind == "response.output_text.done":
            text = event.get("text")
            if not self._saw_delta and isinstance(text, str) and text:
                rest.answer(text, out)
        elif kind == "response.search.result":
            result = event.get("result")
            if isinstance(result, dict):
                rest.search_results([result], out)
        elif kind == "response.grok.output":
            output = event.get("output")
            if isinstance(output, dict):
                if output.get("stream_error"):
                    rest.end(out, _fault(classify_inband(output["stream_error"])))
                    return
                if output.get("card_attachment") is not None:
                    rest.card(output["card_attachment"], out)
        elif kind == "response.done":
            response = event.get("response")
            status = response.get("status") if isinstance(response, dict) else None
            if isinstance(response, dict) and response.get("id"):
                rest.response_id = str(response["id"])
            if status == "completed":
                rest.stop(out)
            else:
                rest.end(out, _fault(truncated_stream(f"the gateway turn ended as {status!r}")))
        elif kind == "error":
            rest.end(out, _fault(classify_inband(event.get("error") or "gateway error")))
        elif kind == "session.ended":
            rest.end(out, _fault(truncated_stream("the gateway session ended before response.done")))

    def _chunk(self, chunk: dict[str, Any], out: list[Event]) -> None:
        rest = self._rest
        text = chunk.get("text")
        if isinstance(text, dict):
            token = text.get("text")
            if not isinstance(token, str) or not token:
                return
            channel = str(text.get("channel") or "")
            if not channel or channel == ANSWER_CHANNEL:
                rest.answer(token, out)
            elif "ANALYSIS" in channel or "REASONING" in channel:
                rest.thinking(token, "", out)
            return
        card = chunk.get("tool_usage_card")
        if isinstance(card, dict):
            for key, value in card.items():
                if key == "tool_usage_card_id" or not isinstance(value, dict):
                    continue
                inner = value.get("args")
                args = inner if isinstance(inner, dict) else {k: v for k, v in value.items() if k != "args"}
                rest.server_tool(_TOOLS.get(key) or str(key), args, out)
                break
            return
        result = chunk.get("tool_result")
        if isinstance(result, dict):
            search = result.get("web_search")
            if isinstance(search, dict) and isinstance(search.get("webpages"), list):
                rest.search_results(search["webpages"], out)
            posts = result.get("x_post")
            if isinstance(posts, dict) and isinstance(posts.get("posts"), list):
                rest.search_results(posts["posts"], out)
            return
        citation = chunk.get("render_citation")
        if isinstance(citation, dict):
            url = citation.get("url")
            if isinstance(url, str) and url:
                rest.cite(url, out)


def _fault(failure: UpstreamFailure) -> Fault:
    return Fault(failure.to_error(), failure)
