"""The Imagine WebSocket (E4): reset, then a request; per slot start_stage, image frames, completed."""

from __future__ import annotations

import asyncio
import base64
import functools
import uuid
from typing import Any

import orjson
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from infra.sim import pixels
from infra.sim.accounts import Account
from infra.sim.directives import parse
from infra.sim.gate import admit
from infra.sim.state import SimState
from infra.sim.wire import RATE_LIMITED, json_response

_SIZES = {
    "1:1": (1024, 1024),
    "16:9": (1280, 720),
    "9:16": (720, 1280),
    "3:2": (1168, 784),
    "2:3": (784, 1168),
}
_STAGES = (33, 66, 100)


@functools.lru_cache(maxsize=32)
def _blob(seed: int) -> str:
    return base64.b64encode(pixels.sample_jpeg(seed)).decode()


def _error(code: str, message: str) -> str:
    return orjson.dumps({"type": "error", "err_code": code, "err_msg": message}).decode()


def _content(message: Any) -> dict[str, Any] | None:
    if not isinstance(message, dict) or message.get("type") != "conversation.item.create":
        return None
    content = (message.get("item") or {}).get("content")
    if not isinstance(content, list) or not content or not isinstance(content[0], dict):
        return None
    return content[0]


async def _round(state: SimState, ws: WebSocket, account: Account, content: dict[str, Any]) -> None:
    props = content.get("properties") or {}
    text = content.get("text")
    if not isinstance(text, str) or not text.strip() or not isinstance(props, dict):
        await ws.send_text(_error("invalid_request", "text and properties are required"))
        return
    pro = bool(props.get("enable_pro"))
    if account.antibot:
        await ws.send_text(_error("anti_bot", "Request rejected by anti-bot rules."))
        return
    if not state.accounts.consume(account, "image_pro" if pro else "auto"):
        await ws.send_text(
            _error("rate_limit_exceeded", "You've reached your usage limit. Please try again later.")
        )
        return
    directive = parse(text)
    count = props.get("num_generations") or (4 if pro else 6)
    width, height = _SIZES.get(str(props.get("aspect_ratio")), (784, 1168))
    delay = directive.delay_ms / 1000
    slots = [str(uuid.uuid4()) for _ in range(max(1, min(int(count), 10)))]
    urls = []
    for order, image_id in enumerate(slots):
        path = f"users/{account.user_id}/generated/images/{image_id}.jpg"
        state.assets.add(account.user_id, path, pixels.sample_jpeg(order), "image/jpeg", asset_id=image_id)
        urls.append(state.assets_url + path)
    frames: list[dict[str, Any]] = [
        {
            "type": "json",
            "current_status": "start_stage",
            "image_id": i,
            "order": n,
            "width": width,
            "height": height,
        }
        for n, i in enumerate(slots)
    ]
    moderated = {0} if directive.moderated else set()
    for pct in _STAGES:
        for n, image_id in enumerate(slots):
            if pct == 100 and n in moderated:
                continue
            blob = _blob(n) if pct == 100 else _blob(n + 8)
            frames.append({"type": "image", "image_id": image_id, "order": n, "url": urls[n], "blob": blob,
                           "percentage_complete": pct, "width": width, "height": height})  # fmt: skip
    frames += [
        {
            "type": "json",
            "current_status": "completed",
            "image_id": i,
            "order": n,
            "moderated": n in moderated,
            "r_rated": False,
            "url": urls[n],
        }
        for n, i in enumerate(slots)
    ]
    for frame in frames:
        if delay:
            await asyncio.sleep(delay)
        await ws.send_text(orjson.dumps(frame).decode())


def routes(state: SimState) -> list[WebSocketRoute]:
    async def listen(ws: WebSocket) -> None:
        account = await admit(state, ws, generation=True)
        if not isinstance(account, Account):
            await ws.send_denial_response(account)
            return
        if account.ratelimited:
            await ws.send_denial_response(json_response(RATE_LIMITED, 429))
            return
        await ws.accept()
        record = ws.scope.get("sim.record")
        reset = False
        try:
            while True:
                raw = await ws.receive_text()
                try:
                    message = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    message = raw
                if record is not None:
                    record.ws_messages.append(message)
                content = _content(message)
                if content is None:
                    await ws.send_text(_error("invalid_request", "expected conversation.item.create"))
                elif content.get("type") == "reset":
                    reset = True
                elif content.get("type") == "input_text":
                    if not reset:
                        await ws.send_text(_error("invalid_request", "send a reset item before each request"))
                        continue
                    reset = False
                    await _round(state, ws, account, content)
                else:
                    await ws.send_text(
                        _error("invalid_request", f"unknown content type {content.get('type')!r}")
                    )
        except WebSocketDisconnect:
            return

    return [WebSocketRoute("/ws/imagine/listen", listen)]
