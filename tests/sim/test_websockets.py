"""The Imagine WebSocket (E4) and the v3 chat gateway WebSocket (E3), over real sockets."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from infra.sim.script import expected_answer
from infra.sim.server import SimServer

TOKEN = "sim-heavy-ws"


def ws_headers(token: str, uid: str | None = None) -> dict[str, str]:
    cookie = f"sso={token}; sso-rw={token}" + (f"; x-userid={uid}" if uid else "")
    return {"Cookie": cookie, "Cache-Control": "no-cache", "Pragma": "no-cache"}


async def send(ws: ClientConnection, obj: dict[str, Any]) -> None:
    await ws.send(orjson.dumps(obj).decode())


async def recv(ws: ClientConnection) -> dict[str, Any]:
    return orjson.loads(await ws.recv())


# E4 -------------------------------------------------------------------------------------------------


def imagine_request(text: str, **props: Any) -> dict[str, Any]:
    properties = {
        "section_count": 0,
        "is_kids_mode": False,
        "enable_nsfw": True,
        "aspect_ratio": "2:3",
        "enable_pro": False,
    }
    properties.update(props)
    item = {
        "type": "message",
        "content": [{"requestId": "5d8b", "text": text, "type": "input_text", "properties": properties}],
    }
    return {"type": "conversation.item.create", "timestamp": int(time.time() * 1000), "item": item}


RESET = {
    "type": "conversation.item.create",
    "timestamp": 0,
    "item": {"type": "message", "content": [{"type": "reset"}]},
}


async def imagine_round(ws: ClientConnection, slots: int) -> list[dict[str, Any]]:
    got, done = [], 0
    while done < slots:
        frame = await recv(ws)
        got.append(frame)
        done += frame.get("current_status") == "completed"
    return got


@pytest.mark.parametrize(
    ("props", "slots"), [({}, 6), ({"enable_pro": True}, 4), ({"num_generations": 3}, 3)]
)
async def test_imagine_slots_follow_start_images_completed(sim: SimServer, props: dict, slots: int) -> None:
    async with connect(
        sim.ws_url + "/ws/imagine/listen", additional_headers=ws_headers(TOKEN), origin="https://grok.com"
    ) as ws:  # type: ignore[arg-type]
        await send(ws, RESET)
        await send(ws, imagine_request("a lighthouse at dusk", **props))
        frames = await imagine_round(ws, slots)
    ids = {f["image_id"] for f in frames if f.get("current_status") == "start_stage"}
    assert len(ids) == slots
    for image_id in ids:
        mine = [f for f in frames if f.get("image_id") == image_id]
        kinds = [f.get("current_status") or f["type"] for f in mine]
        assert kinds[0] == "start_stage" and kinds[-1] == "completed" and 2 <= kinds.count("image") <= 3
        images = [f for f in mine if f["type"] == "image"]
        assert [f["percentage_complete"] for f in images] == [33, 66, 100]
        assert all(f["url"].endswith(f"/images/{image_id}.jpg") for f in images)
        assert base64.b64decode(images[-1]["blob"]).startswith(b"\xff\xd8\xff")
        assert mine[-1]["moderated"] is False and mine[-1]["r_rated"] is False
    url = next(f["url"] for f in frames if f["type"] == "image")
    got = httpx.get(url, headers=ws_headers(TOKEN))
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"


async def test_imagine_requires_reset_and_marks_moderated(sim: SimServer) -> None:
    async with connect(sim.ws_url + "/ws/imagine/listen", additional_headers=ws_headers(TOKEN)) as ws:
        await send(ws, imagine_request("no reset"))
        error = await recv(ws)
        assert error["type"] == "error" and error["err_code"] == "invalid_request"
        await send(ws, RESET)
        await send(ws, imagine_request("x #sim moderated", num_generations=2))
        frames = await imagine_round(ws, 2)
        completed = {f["order"]: f["moderated"] for f in frames if f.get("current_status") == "completed"}
        assert completed == {0: True, 1: False}
        await send(ws, RESET)  # a second round on the same socket
        await send(ws, imagine_request("again", num_generations=1))
        assert len(await imagine_round(ws, 1)) == 5
    assert [m["item"]["content"][0]["type"] for m in sim.log.last(path="/ws/imagine/listen").ws_messages] == [
        "input_text",
        "reset",
        "input_text",
        "reset",
        "input_text",
    ]


@pytest.mark.parametrize(
    ("token", "status"), [("sim-ratelimited-ws", 429), ("sim-blocked-ws", 403), ("nobody", 400)]
)
async def test_imagine_handshake_rejections(sim: SimServer, token: str, status: int) -> None:
    with pytest.raises(InvalidStatus) as caught:
        async with connect(sim.ws_url + "/ws/imagine/listen", additional_headers=ws_headers(token)):
            pass
    assert caught.value.response.status_code == status


async def test_imagine_challenge_handshake_is_an_html_403(sim: SimServer) -> None:
    with pytest.raises(InvalidStatus) as caught:
        async with connect(
            sim.ws_url + "/ws/imagine/listen", additional_headers=ws_headers("sim-challenge-ws")
        ):
            pass
    assert caught.value.response.status_code == 403 and b"Just a moment..." in caught.value.response.body


# E3 -------------------------------------------------------------------------------------------------


def session_create(model: str, **x_grok: Any) -> dict[str, Any]:
    base = {"protocol_capabilities": ["conversation_attached", "custom_methods_v1"], "use_chunk": True}
    base.update(x_grok or {"keep_context": False, "is_temporary": True, "disable_memory": True})
    return {
        "event": {
            "type": "session.create",
            "event_id": "evt_init_1234",
            "session": {"model": model, "x_grok": base},
        }
    }


def item_create(session_id: str, text: str) -> dict[str, Any]:
    item = {
        "type": "message",
        "role": "user",
        "x_grok": {"client_message_id": "c1", "input_chunks": [{"text": {"text": text}}]},
    }
    return {
        "session_id": session_id,
        "event": {"type": "conversation.item.create", "event_id": "evt_msg_1", "item": item},
    }


async def gateway_turn(
    sim: SimServer, text: str, model: str = "expert", token: str = TOKEN, **x_grok: Any
) -> tuple[str, list[dict]]:
    uid = sim.account(token).user_id
    url = f"{sim.ws_url}/ws/mgw/?uid={uid}"
    async with connect(url, additional_headers=ws_headers(token, uid), origin="https://grok.com") as ws:  # type: ignore[arg-type]
        created = session_create(model, **x_grok)
        if "conversation_id" in x_grok:
            created["session_id"] = x_grok["conversation_id"]
        await send(ws, created)
        hello = await recv(ws)
        assert hello["event"] == {"type": "session.created", "client_event_id": "evt_init_1234"}
        attached = await recv(ws)
        sid = hello["session_id"]
        assert attached == {
            "session_id": sid,
            "event": {"type": "conversation.attached", "conversation": {"id": sid}},
        }
        await send(ws, {"event": {"type": "ping", "event_id": "evt_hb_1"}})
        await send(ws, item_create(sid, text))
        await send(ws, {"session_id": sid, "event": {"type": "response.create", "event_id": "evt_resp_1"}})
        events = []
        while True:
            event = await recv(ws)
            events.append(event)
            if event["event"]["type"] in ("response.done", "error"):
                return sid, events


def channel_text(events: list[dict], channel: str) -> str:
    return "".join(
        e["event"]["chunk"]["text"]["text"]
        for e in events
        if "text" in e["event"].get("chunk", {}) and e["event"]["chunk"]["text"]["channel"] == channel
    )


async def test_gateway_turn_streams_both_channels_then_done(sim: SimServer) -> None:
    sid, events = await gateway_turn(sim, "[user]\nexplain tides\n\n")
    reasoning, answer = expected_answer("explain tides", "expert")
    assert channel_text(events, "CHANNEL_ANALYSIS") == reasoning
    assert channel_text(events, "CHANNEL_ASSISTANT_RESPONSE") == answer
    done = events[-1]
    assert done["session_id"] == sid and done["event"]["response"]["status"] == "completed"
    record = sim.log.last(path="/ws/mgw/")
    assert record.query.startswith("uid=") and record.cookies["x-userid"] == sim.account(TOKEN).user_id


async def test_gateway_tool_cards_citations_and_images(sim: SimServer) -> None:
    _, events = await gateway_turn(sim, "x #sim search card image=1 tokens=4")
    chunks = [e["event"].get("chunk", {}) for e in events]
    card = next(c["tool_usage_card"] for c in chunks if "tool_usage_card" in c)
    result = next(c["tool_result"] for c in chunks if "tool_result" in c)
    assert result["tool_call_id"] == card["tool_usage_card_id"] and result["web_search"]["webpages"]
    citation = next(c["render_citation"] for c in chunks if "render_citation" in c)
    assert citation["kind"] == "CITATION_KIND_WEB_PAGE" and citation["url"].startswith("https://")
    outputs = [
        orjson.loads(e["event"]["output"]["card_attachment"]["jsonData"])
        for e in events
        if e["event"]["type"] == "response.grok.output"
    ]
    assert outputs[-1]["image_chunk"]["progress"] == 100
    assert "<grok:render" not in channel_text(events, "CHANNEL_ASSISTANT_RESPONSE")


async def test_gateway_follow_up_loads_the_existing_conversation(sim: SimServer) -> None:
    sid, _ = await gateway_turn(sim, "first")
    again, events = await gateway_turn(
        sim, "second", conversation_id=sid, load_existing=True, needs_history=False
    )
    assert again == sid and events[-1]["event"]["type"] == "response.done"


@pytest.mark.parametrize(
    ("token", "text", "code"),
    [
        ("sim-antibot-ws", "x", "anti_bot"),
        (TOKEN, "x #sim inband_error", "anti_bot"),
        (TOKEN, "x #sim usage_limit", "rate_limited"),
    ],
)
async def test_gateway_error_events(sim: SimServer, token: str, text: str, code: str) -> None:
    _, events = await gateway_turn(sim, text, token=token)
    assert events[-1]["event"]["type"] == "error" and events[-1]["event"]["error"]["code"] == code


async def test_gateway_quota_is_spent_per_turn(sim: SimServer) -> None:
    sim.accounts.configure("sim-basic-gw", window_seconds=100)
    for _ in range(8):
        _, events = await gateway_turn(sim, "x", token="sim-basic-gw")
        assert events[-1]["event"]["type"] == "response.done"
    _, events = await gateway_turn(sim, "x", token="sim-basic-gw")
    assert events[-1]["event"]["error"]["code"] == "rate_limited"


async def test_gateway_rejects_a_foreign_uid_and_a_missing_session(sim: SimServer) -> None:
    with pytest.raises(InvalidStatus) as caught:
        async with connect(
            f"{sim.ws_url}/ws/mgw/?uid=00000000-0000-4000-8000-000000000000",
            additional_headers=ws_headers(TOKEN),
        ):
            pass
    assert caught.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as caught:
        async with connect(f"{sim.ws_url}/ws/mgw/?uid=x", additional_headers={}):
            pass
    assert caught.value.response.status_code == 400


async def test_gateway_requires_session_create_first_and_drops_midstream(sim: SimServer) -> None:
    uid = sim.account(TOKEN).user_id
    async with connect(f"{sim.ws_url}/ws/mgw/?uid={uid}", additional_headers=ws_headers(TOKEN)) as ws:
        await send(ws, item_create("nope", "hi"))
        assert (await recv(ws))["event"]["type"] == "error"
    async with connect(f"{sim.ws_url}/ws/mgw/?uid={uid}", additional_headers=ws_headers(TOKEN)) as ws:
        await ws.send("not json")
        assert (await recv(ws))["event"]["type"] == "error"
    async with connect(f"{sim.ws_url}/ws/mgw/?uid={uid}", additional_headers=ws_headers(TOKEN)) as ws:
        await send(ws, session_create("fast"))
        sid = (await recv(ws))["session_id"]
        await recv(ws)
        await send(ws, item_create(sid, "x #sim tokens=30 midstream_drop=5"))
        await send(ws, {"session_id": sid, "event": {"type": "response.create", "event_id": "evt_resp_1"}})
        got = []
        with pytest.raises(ConnectionClosed):
            while True:
                got.append(await recv(ws))
        assert len(got) == 5 and ws.close_code == 1011
