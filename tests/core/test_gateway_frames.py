"""`GatewayDecoder`: the gateway WebSocket's messages -> the same events as the REST stream.

Every server message kind on its own, and any split of the bytes gives the same events. Parity
with the REST stream, through the simulator, is in tests/infra/test_gateway_parity.py.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
)
from core.protocol.classify import Kind
from core.protocol.frames import FrameDecoder
from core.protocol.gateway_frames import (
    GatewayDecoder,
    decoder_for,
    gateway_url,
    handshake_failure,
    handshake_step,
    item_create,
    response_create,
    session_create,
)
from core.protocol.payload import chat_body

ASSETS = "https://assets.test"


def msg(event: dict[str, Any], session_id: str | None = None) -> bytes:
    envelope: dict[str, Any] = {"event": event}
    if session_id is not None:
        envelope["session_id"] = session_id
    return orjson.dumps(envelope) + b"\n"


def chunk(**fields: Any) -> bytes:
    return msg({"type": "response.chunk", "chunk": fields})


def text(t: str, channel: str = "CHANNEL_ASSISTANT_RESPONSE") -> bytes:
    return chunk(text={"text": t, "channel": channel})


DONE = msg({"type": "response.done", "response": {"id": "resp-1", "status": "completed"}}, "conv-1")


def decode(data: bytes, splits: list[int] | None = None) -> tuple[list[Event], GatewayDecoder]:
    decoder = GatewayDecoder(assets_url=ASSETS)
    events: list[Event] = []
    start = 0
    for cut in [*sorted(set(splits or [])), len(data)]:
        events.extend(decoder.feed(data[start:cut]))
        start = cut
    events.extend(decoder.flush())
    return events, decoder


def joined(events: list[Event]) -> list[Any]:
    """Runs of text and of reasoning joined; faults compared by kind. The rollout of reasoning is
    left out: the socket names none (REST's `rolloutId`), and no dialect shows it."""
    out: list[Any] = []
    for event in events:
        last = out[-1] if out else None
        if isinstance(event, TextDelta) and isinstance(last, TextDelta):
            out[-1] = TextDelta(last.text + event.text)
        elif isinstance(event, ReasoningDelta):
            if isinstance(last, ReasoningDelta):
                out[-1] = ReasoningDelta(last.text + event.text)
            else:
                out.append(ReasoningDelta(event.text))
        elif isinstance(event, Fault):
            out.append(("fault", event.failure.kind if event.failure else None))
        else:
            out.append(event)
    return out


STREAM = (
    text("hm", "CHANNEL_ANALYSIS")
    + chunk(tool_usage_card={"tool_usage_card_id": "t1", "web_search": {"args": {"query": "tides"}}})
    + chunk(
        tool_result={
            "tool_call_id": "t1",
            "web_search": {"webpages": [{"url": "https://a.test/x", "title": "Tides", "snippet": "s"}]},
        }
    )
    + text("A tide")
    + chunk(
        render_citation={
            "id": "c1",
            "kind": "CITATION_KIND_WEB_PAGE",
            "url": "https://a.test/x",
            "citation_id": 0,
        }
    )
    + text(" is water.")
    + DONE
)


def test_every_message_kind_of_a_turn() -> None:
    events, decoder = decode(STREAM)
    assert events == [
        ReasoningDelta("hm"),
        ServerToolUse("web_search", {"query": "tides"}),
        SearchResults((("https://a.test/x", "Tides"),)),
        TextDelta("A tide[[1]](https://a.test/x)"),
        Citation(1, "https://a.test/x", "Tides"),
        TextDelta(" is water."),
        Finish(),
    ]
    assert decoder.done and decoder.response_id == "resp-1"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=40))
def test_any_split_gives_the_same_events(splits: list[int]) -> None:
    assert joined(decode(STREAM, splits)[0]) == joined(decode(STREAM)[0])


def test_output_text_deltas_and_the_done_text() -> None:
    deltas = msg({"type": "response.output_text.delta", "delta": "Hi "}) + msg(
        {"type": "response.output_text.delta", "delta": "there"}
    )
    done = msg({"type": "response.output_text.done", "text": "Hi there"})
    assert joined(decode(deltas + done + DONE)[0]) == [TextDelta("Hi there"), Finish()]
    # Only the done text: used as the answer when no delta came.
    assert joined(decode(done + DONE)[0]) == [TextDelta("Hi there"), Finish()]


def test_other_channels_are_not_the_answer() -> None:
    events, _ = decode(
        text("plan", "CHANNEL_REASONING") + text("x", "CHANNEL_SUGGESTIONS") + text("ok", "") + DONE
    )
    assert events == [ReasoningDelta("plan"), TextDelta("ok"), Finish()]


def test_a_generated_image_card() -> None:
    card = {
        "id": "img-1",
        "cardType": "generated_image_card",
        "image_chunk": {"imageUuid": "u1", "imageUrl": "users/u/generated/u1/image.jpg", "progress": 100},
    }
    out = msg(
        {
            "type": "response.grok.output",
            "output": {"card_attachment": {"jsonData": orjson.dumps(card).decode()}},
        }
    )
    events, _ = decode(out + DONE)
    assert events == [ImageOut(ASSETS + "/users/u/generated/u1/image.jpg", 100, True, False, "u1"), Finish()]


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (
            msg({"type": "error", "error": {"code": "anti_bot", "message": "anti-bot rejected"}}),
            Kind.ANTI_BOT,
        ),
        (msg({"type": "error", "error": {"code": 7, "message": "nope"}}), Kind.ANTI_BOT),
        (
            text("a")
            + msg(
                {"type": "response.grok.output", "output": {"stream_error": {"message": "boom", "code": 13}}}
            ),
            Kind.TRANSIENT,
        ),
        (text("a") + msg({"type": "session.ended"}), Kind.TRUNCATED),
        (
            text("a") + msg({"type": "response.done", "response": {"id": "r", "status": "failed"}}),
            Kind.TRUNCATED,
        ),
        (text("a"), Kind.TRUNCATED),  # the socket closed without response.done
        (DONE, Kind.EMPTY),
    ],
)
def test_every_way_a_turn_fails_is_a_fault(data: bytes, kind: Kind) -> None:
    events, decoder = decode(data)
    assert isinstance(events[-1], Fault) and events[-1].failure is not None
    assert events[-1].failure.kind is kind
    assert decoder.done


def test_nothing_is_read_after_the_end() -> None:
    events, _ = decode(DONE.replace(b'"status":"completed"', b'"status":"completed"') + text("late") + DONE)
    assert events == [("fault", Kind.EMPTY)] or isinstance(events[-1], Fault)
    events, _ = decode(text("a") + DONE + text("late"))
    assert events == [TextDelta("a"), Finish()]


def test_the_client_messages_of_a_turn() -> None:
    body = chat_body("[user]\nhi\n\n", "expert", file_ids=["file-1"])
    create = session_create(body, "evt_init_1")
    assert create["event"]["session"]["model"] == "expert"
    assert create["event"]["session"]["x_grok"]["is_temporary"] is True
    assert "session_id" not in create
    item = item_create("conv-1", body, "msg-1", 1755680000000)
    chunks = item["event"]["item"]["x_grok"]["input_chunks"]
    assert chunks == [
        {"mention": {"target": {"file_mention": {"file_id": "file-1"}}}},
        {"text": {"text": "[user]\nhi\n\n"}},
    ]
    assert item["event"]["file_attachment_ids"] == item["event"]["item"]["file_attachment_ids"] == ["file-1"]
    assert item["event"]["event_id"] == "evt_msg_1755680000000"
    assert response_create("conv-1", 1755680000000)["event"]["event_id"] == "evt_resp_1755680000000"
    assert "file_attachment_ids" not in item_create("c", chat_body("x", "auto"), "m", 1)["event"]
    assert gateway_url("https://grok.com", "u-1") == "wss://grok.com/ws/mgw/?uid=u-1"
    assert gateway_url("http://127.0.0.1:9", "u") == "ws://127.0.0.1:9/ws/mgw/?uid=u"


def test_the_handshake_messages() -> None:
    created = orjson.loads(msg({"type": "session.created", "client_event_id": "evt_init_1"}, "c1"))
    assert handshake_step(created, "evt_init_1") == ("created", "c1")
    assert handshake_step(created, "evt_init_other")[0] == "other"  # not the answer to our create
    attached = orjson.loads(msg({"type": "conversation.attached", "conversation": {"id": "c1"}}, "c1"))
    assert handshake_step(attached, "evt_init_1") == ("attached", "c1")
    error = orjson.loads(
        msg({"type": "error", "error": {"code": "rate_limited", "message": "Too many requests"}})
    )
    step, value = handshake_step(error, "evt_init_1")
    assert step == "error" and handshake_failure(value).kind is Kind.RATE_LIMITED


def test_the_stream_says_which_decoder_reads_it() -> None:
    class Socket:
        wire = "ws"

    assert isinstance(decoder_for(Socket(), ASSETS), GatewayDecoder)
    assert isinstance(decoder_for(object(), ASSETS), FrameDecoder)


def test_x_post_results_are_search_results() -> None:
    posts = {"posts": [{"userhandle": "NOAA", "name": "NOAA", "text": "Tides", "post_id": "42"}]}
    events, _ = decode(
        chunk(tool_usage_card={"tool_usage_card_id": "t1", "x_search": {"args": {"query": "tides"}}})
        + chunk(tool_result={"tool_call_id": "t1", "x_post": posts})
        + text("ok")
        + DONE
    )
    assert SearchResults((("https://x.com/NOAA/status/42", "@NOAA: Tides"),)) in events
    assert ServerToolUse("x_search", {"query": "tides"}) in events
