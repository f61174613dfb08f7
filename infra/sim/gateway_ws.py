"""The v3 chat gateway WebSocket (E3): session.create -> session.created + conversation.attached,
then conversation.item.create + response.create -> response.chunk events -> response.done."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from infra.sim.accounts import CHAT_MODES, Account
from infra.sim.gate import admit
from infra.sim.script import Answer, Card, SearchResults, Think, ToolCard, build
from infra.sim.state import SimState
from infra.sim.wire import bad_request


def _event(session_id: str | None, event: dict[str, Any]) -> str:
    envelope: dict[str, Any] = (
        {"event": event} if session_id is None else {"session_id": session_id, "event": event}
    )
    return orjson.dumps(envelope).decode()


def _error(session_id: str | None, code: str, message: str) -> str:
    return _event(session_id, {"type": "error", "error": {"code": code, "message": message}})


def _text(item: dict[str, Any]) -> str:
    chunks = (item.get("x_grok") or {}).get("input_chunks") or []
    return "".join(
        c["text"].get("text", "") for c in chunks if isinstance(c, dict) and isinstance(c.get("text"), dict)
    )


def turn_events(
    script_items: tuple[Any, ...], citations: dict[str, dict[str, Any]]
) -> list[tuple[dict[str, Any], bool]]:
    """(event, is_token) pairs for one turn; citation tags become render_citation chunks."""
    out: list[tuple[dict[str, Any], bool]] = []
    cited = 0
    for item in script_items:
        if isinstance(item, Think):
            out.append(
                (
                    {
                        "type": "response.chunk",
                        "chunk": {"text": {"text": item.text, "channel": "CHANNEL_ANALYSIS"}},
                    },
                    True,
                )
            )
        elif isinstance(item, Answer):
            card = next((c for cid, c in citations.items() if f'card_id="{cid}"' in item.text), None)
            if card is not None:
                chunk = {
                    "id": card["id"],
                    "kind": "CITATION_KIND_WEB_PAGE",
                    "url": card["url"],
                    "citation_id": cited,
                }
                out.append(({"type": "response.chunk", "chunk": {"render_citation": chunk}}, False))
                cited += 1
            elif not item.text.startswith("<grok:render"):
                out.append(
                    (
                        {
                            "type": "response.chunk",
                            "chunk": {"text": {"text": item.text, "channel": "CHANNEL_ASSISTANT_RESPONSE"}},
                        },
                        True,
                    )
                )
        elif isinstance(item, ToolCard):
            card = {"tool_usage_card_id": item.card_id, "web_search": {"args": {"query": item.query}}}
            out.append(({"type": "response.chunk", "chunk": {"tool_usage_card": card}}, False))
        elif isinstance(item, SearchResults):
            pages = [{"url": r["url"], "title": r["title"], "snippet": r["title"]} for r in item.results]
            result = {"tool_call_id": item.card_id, "web_search": {"webpages": pages}}
            out.append(({"type": "response.chunk", "chunk": {"tool_result": result}}, False))
        elif isinstance(item, Card) and item.data.get("cardType") == "generated_image_card":
            attachment = {"jsonData": orjson.dumps(item.data).decode()}
            out.append(({"type": "response.grok.output", "output": {"card_attachment": attachment}}, False))
    return out


class _Session:
    def __init__(self, state: SimState, ws: WebSocket, account: Account) -> None:
        self.state, self.ws, self.account = state, ws, account
        self.session_id: str | None = None
        self.model = "auto"
        self.item: dict[str, Any] | None = None

    async def handle(self, message: Any) -> bool:
        """Process one client message; False ends the socket."""
        event = message.get("event") if isinstance(message, dict) else None
        if not isinstance(event, dict):
            await self.ws.send_text(_error(None, "invalid_request", "expected a JSON envelope with an event"))
            return False
        kind = event.get("type")
        if kind == "ping":
            return True
        if kind == "session.create":
            return await self.create(message, event)
        if self.session_id is None or message.get("session_id") != self.session_id:
            await self.ws.send_text(_error(None, "invalid_request", "session.create must come first"))
            return False
        if kind == "conversation.item.create":
            item = event.get("item")
            if not isinstance(item, dict) or item.get("role") != "user" or not _text(item):
                await self.ws.send_text(
                    _error(self.session_id, "invalid_request", "item needs role user and a text chunk")
                )
                return False
            self.item = item
            return True
        if kind == "response.create":
            if self.item is None:
                await self.ws.send_text(
                    _error(self.session_id, "invalid_request", "response.create before any item")
                )
                return False
            return await self.respond()
        await self.ws.send_text(_error(self.session_id, "invalid_request", f"unknown event type {kind!r}"))
        return False

    async def create(self, message: dict[str, Any], event: dict[str, Any]) -> bool:
        session = event.get("session") or {}
        x_grok = session.get("x_grok") or {}
        if session.get("model") not in CHAT_MODES or not str(event.get("event_id", "")).startswith(
            "evt_init_"
        ):
            await self.ws.send_text(
                _error(None, "invalid_request", "session.create needs a known model and an evt_init_ id")
            )
            return False
        self.model = session["model"]
        if x_grok.get("load_existing"):
            cid = x_grok.get("conversation_id")
            conv = self.state.conversations.get(str(cid))
            if conv is None or conv.owner != self.account.token or message.get("session_id") != cid:
                await self.ws.send_text(_error(None, "not_found", "conversation not found"))
                return False
        else:
            cid = self.state.conversations.create(self.account.token)
        self.session_id = cid
        await self.ws.send_text(
            _event(cid, {"type": "session.created", "client_event_id": event["event_id"]})
        )
        await self.ws.send_text(_event(cid, {"type": "conversation.attached", "conversation": {"id": cid}}))
        return True

    async def respond(self) -> bool:
        sid, item = self.session_id, self.item or {}
        self.item = None
        if self.account.antibot:
            await self.ws.send_text(_error(sid, "anti_bot", "anti-bot rejected"))
            return False
        if not self.state.accounts.consume(self.account, self.model):
            await self.ws.send_text(
                _error(sid, "rate_limited", "You've reached your usage limit. Please try again later.")
            )
            return False
        script = build(_text(item), self.model, self.account.user_id, None)
        directive = script.directive
        if directive.inband_error or directive.usage_limit:
            message = (
                "anti-bot rejected"
                if directive.inband_error
                else "You've reached your usage limit. Please try again later."
            )
            await self.ws.send_text(
                _error(sid, "anti_bot" if directive.inband_error else "rate_limited", message)
            )
            return False
        for n, path in enumerate(script.images):
            self.state.assets.generated_image(self.account.user_id, path, n)
        citations = {c["id"]: c for c in script.cards if c.get("type") == "render_inline_citation"}
        events = turn_events(script.items, citations)
        if directive.stream_error:
            events.append(
                (
                    {
                        "type": "response.grok.output",
                        "output": {"stream_error": {"message": "Simulated stream error", "code": 13}},
                    },
                    False,
                )
            )
        if directive.ttfb_ms:
            await asyncio.sleep(directive.ttfb_ms / 1000)
        tokens = 0
        for event, is_token in events:
            if directive.midstream_drop is not None and tokens >= directive.midstream_drop:
                await self.ws.close(1011)
                return False
            if is_token and directive.delay_ms:
                await asyncio.sleep(directive.delay_ms / 1000)
            tokens += is_token
            await self.ws.send_text(_event(None, event))
        response_id = str(uuid.uuid4())
        conv = self.state.conversations.get(str(sid))
        if conv is not None:
            conv.response_ids.add(response_id)
        status = "failed" if directive.stream_error else "completed"
        await self.ws.send_text(
            _event(sid, {"type": "response.done", "response": {"id": response_id, "status": status}})
        )
        return True


def routes(state: SimState) -> list[WebSocketRoute]:
    async def gateway(ws: WebSocket) -> None:
        account = await admit(state, ws, generation=True)
        if not isinstance(account, Account):
            await ws.send_denial_response(account)
            return
        if ws.query_params.get("uid") != account.user_id:
            await ws.send_denial_response(bad_request("uid does not match the session's user", 403, 7))
            return
        await ws.accept()
        record = ws.scope.get("sim.record")
        session = _Session(state, ws, account)
        try:
            while True:
                raw = await ws.receive_text()
                try:
                    message = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    message = raw
                if record is not None:
                    record.ws_messages.append(message)
                if not await session.handle(message):
                    break
            if ws.client_state.name == "CONNECTED":
                await ws.close()
        except WebSocketDisconnect:
            return
        except RuntimeError:  # the socket was closed under us (midstream drop)
            return

    return [WebSocketRoute("/ws/mgw/", gateway), WebSocketRoute("/ws/mgw", gateway)]
