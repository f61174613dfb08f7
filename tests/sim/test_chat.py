"""E1/E2 chat over a real loopback socket: frame order, directives, validation, follow-ups."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest

from infra.sim.chat import stream_chat
from infra.sim.script import expected_answer
from infra.sim.server import SimServer
from infra.sim.state import SimState
from infra.sim.wire import NDJSONStream
from tests.sim.helpers import CHAT, answer_of, chat, chat_body, frames, headers, reasoning_of, responses

TOKEN = "sim-heavy-alice"


@pytest.fixture
def client(sim: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=10) as c:
        yield c


def kinds(lines: list[dict]) -> list[str]:
    out = []
    for f in lines:
        if "error" in f:
            out.append("error")
            continue
        result = f["result"]
        if "conversation" in result:
            out.append("F1")
            continue
        r = result["response"]
        if "userResponse" in r:
            out.append("F2")
        elif "modelResponse" in r:
            out.append("F11")
        elif "finalMetadata" in r:
            out.append("F13")
        elif r.get("isSoftStop"):
            out.append("F12")
        elif "cardAttachment" in r:
            out.append("F8")
        elif r.get("messageTag") == "tool_usage_card":
            out.append("F5")
        elif r.get("messageTag") == "tool_usage_card_result":
            out.append("F7")
        elif r.get("messageTag") == "raw_function_result":
            out.append("F6")
        elif r.get("isThinking"):
            out.append("F4")
        elif "error" in r:
            out.append("error")
        else:
            out.append("F3")
    return out


def test_fast_mode_streams_the_real_order_and_the_expected_answer(client: httpx.Client) -> None:
    r = chat(client, TOKEN, "[user]: What is a tide?")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    lines = frames(r.text)
    order = kinds(lines)
    assert order[:2] == ["F1", "F2"] and order[-3:] == ["F12", "F13", "F11"]
    assert set(order[2:-3]) == {"F3"} and len(order[2:-3]) == 12
    reasoning, answer = expected_answer("What is a tide?", "fast")
    assert reasoning == "" and answer_of(lines) == answer
    final = responses(lines)[-1]["modelResponse"]
    assert final["message"] == answer
    assert final["parentResponseId"] == responses(lines)[0]["userResponse"]["responseId"]
    assert lines[0]["result"]["conversation"]["conversationId"]


def test_expert_mode_thinks_first_with_tags_rollout_and_steps(client: httpx.Client) -> None:
    lines = frames(chat(client, TOKEN, "[user]: Why is the sky blue?", "expert").text)
    order = kinds(lines)
    first_answer = order.index("F3")
    assert set(order[2:first_answer]) == {"F4"} and "F4" not in order[first_answer:]
    thinking = [r for r in responses(lines) if r.get("isThinking")]
    assert {t["rolloutId"] for t in thinking} == {"Grok"}
    assert {t["messageTag"] for t in thinking} == {"header", "summary"}
    assert [t["messageStepId"] for t in thinking] == sorted(t["messageStepId"] for t in thinking)
    assert (reasoning_of(lines), answer_of(lines)) == expected_answer(
        "[user]: Why is the sky blue?", "expert"
    )


def test_heavy_mode_thinks_with_several_agents(client: httpx.Client) -> None:
    lines = frames(chat(client, TOKEN, "#sim think=16 agents=3", "heavy").text)
    rollouts = [r["rolloutId"] for r in responses(lines) if r.get("isThinking")]
    assert set(rollouts) == {"Grok", "Agent 1", "Agent 2", "Agent 3"}


def test_auto_thinks_only_when_asked(client: httpx.Client) -> None:
    assert "F4" not in kinds(frames(chat(client, TOKEN, "plain", "auto").text))
    assert kinds(frames(chat(client, TOKEN, "#sim think=3", "auto").text)).count("F4") == 3


def test_tokens_directive_sets_the_exact_answer_length(client: httpx.Client) -> None:
    lines = frames(
        chat(client, TOKEN, "[system]: be brief\n\n[user]: go #sim tokens=200 think=0", "expert").text
    )
    assert kinds(lines).count("F3") == 200
    assert answer_of(lines) == expected_answer("#sim tokens=200 think=0", "expert")[1]


def test_search_and_citation_cards_precede_their_render_tag(client: httpx.Client) -> None:
    lines = frames(chat(client, TOKEN, "#sim search card tokens=6", "expert").text)
    order = kinds(lines)
    assert order.index("F5") < order.index("F7") < order.index("F3")
    rs = responses(lines)
    card_frame = next(r for r in rs if "cardAttachment" in r)
    card = orjson.loads(card_frame["cardAttachment"]["jsonData"])  # a JSON-encoded string
    assert card["type"] == "render_inline_citation" and card["url"].startswith("https://")
    tag_at = next(i for i, r in enumerate(rs) if "<grok:render" in r.get("token", ""))
    assert rs.index(card_frame) < tag_at
    assert (
        f'card_id="{card["id"]}" card_type="citation_card" type="render_inline_citation"'
        in rs[tag_at]["token"]
    )
    tool = next(r for r in rs if r.get("messageTag") == "tool_usage_card")
    assert tool["toolUsageCard"]["webSearch"]["args"]["query"]
    assert "<xai:tool_name>web_search</xai:tool_name>" in tool["token"]
    final = rs[-1]["modelResponse"]
    assert final["webSearchResults"] and final["cardAttachmentsJson"]


def test_cite_searches_and_cites_each_result_once(client: httpx.Client) -> None:
    rs = responses(frames(chat(client, TOKEN, "#sim cite=3 tokens=4", "expert").text))
    results = next(r for r in rs if "webSearchResults" in r)["webSearchResults"]["results"]
    assert len(results) == 3
    cards = [orjson.loads(r["cardAttachment"]["jsonData"]) for r in rs if "cardAttachment" in r]
    assert [c["url"] for c in cards] == [r["url"] for r in results]
    tags = [r["token"] for r in rs if "<grok:render" in r.get("token", "")]
    assert [f'card_id="{c["id"]}"' in t for c, t in zip(cards, tags, strict=True)] == [True] * 3


def test_disable_search_means_no_search(client: httpx.Client) -> None:
    lines = frames(chat(client, TOKEN, "#sim search cite=2 tokens=4", "expert", disableSearch=True).text)
    assert "F5" not in kinds(lines) and "F7" not in kinds(lines)
    assert "<grok:render" not in answer_of(lines)  # nothing found, nothing cited


def test_drawing_prompt_streams_generated_image_cards_that_download(
    client: httpx.Client, sim: SimServer
) -> None:
    lines = frames(chat(client, TOKEN, "Drawing: a lighthouse at dusk").text)
    cards = [orjson.loads(r["cardAttachment"]["jsonData"]) for r in responses(lines) if "cardAttachment" in r]
    finals = [c["image_chunk"] for c in cards if c["image_chunk"] and c["image_chunk"]["progress"] == 100]
    assert len(finals) == 2 and all(not f["moderated"] for f in finals)
    progress = [
        c["image_chunk"]["progress"] if c["image_chunk"] else 0 for c in cards if c["id"] == cards[0]["id"]
    ]
    assert progress == [0, 50, 100]
    assert responses(lines)[-1]["modelResponse"]["generatedImageUrls"] == [f["imageUrl"] for f in finals]
    image = client.get("/" + finals[0]["imageUrl"], headers=headers(TOKEN))
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.content.startswith(b"\xff\xd8\xff")


def test_image_directive_and_moderation(client: httpx.Client) -> None:
    lines = frames(chat(client, TOKEN, "#sim image=3 moderated tokens=2").text)
    final = responses(lines)[-1]["modelResponse"]
    assert len(final["generatedImageUrls"]) == 2  # the first of three was moderated


@pytest.mark.parametrize(
    ("fmt", "needle"),
    [
        (
            "xml",
            '<tool_calls><tool_call><tool_name>get_weather</tool_name><parameters>{"city": "Paris"}</parameters>',
        ),
        ("invoke", '<invoke name="get_weather"><parameter name="city">Paris</parameter></invoke>'),
        (
            "function_call",
            '<function_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</function_call>',
        ),
        (
            "json_fence",
            '```json\n{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}\n```',
        ),
    ],
)
def test_scripted_tool_calls_in_each_markup(client: httpx.Client, fmt: str, needle: str) -> None:
    prompt = f'[user]: weather? #sim tool=get_weather args={{"city": "Paris"}} tool_format={fmt}'
    lines = frames(chat(client, TOKEN, prompt).text)
    answer = answer_of(lines)
    assert needle in answer
    assert answer == expected_answer(prompt, "fast")[1]
    assert kinds(lines).count("F3") > 3  # split across tokens, like a real model


def test_empty_inband_usage_limit_and_stream_errors(client: httpx.Client) -> None:
    empty = frames(chat(client, TOKEN, "#sim empty").text)
    assert kinds(empty) == ["F1", "F2", "F12", "F13", "F11"] and answer_of(empty) == ""
    inband = frames(chat(client, TOKEN, "#sim inband_error").text)
    assert inband[-1] == {
        "error": {"code": 7, "message": "Request rejected by anti-bot rules.", "details": []}
    }
    usage = frames(chat(client, TOKEN, "#sim usage_limit").text)
    assert "usage limit" in usage[-1]["result"]["response"]["error"]["message"]
    failed = frames(chat(client, TOKEN, "#sim stream_error").text)
    assert responses(failed)[-1]["modelResponse"]["streamErrors"]


def test_status_directive_returns_that_status(client: httpx.Client) -> None:
    r = chat(client, TOKEN, "#sim status=502")
    assert r.status_code == 502 and r.json()["error"]["code"] == 13


def test_midstream_drop_cuts_the_connection(client: httpx.Client) -> None:
    got = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream(
            "POST", CHAT, json=chat_body("#sim tokens=50 midstream_drop=20"), headers=headers(TOKEN)
        ) as r,
    ):
        for chunk in r.iter_bytes():
            got += chunk
    tokens = [f for f in frames(got.decode()) if "token" in f["result"].get("response", {})]
    assert len(tokens) == 20


def test_ttfb_directive_delays_the_first_byte(client: httpx.Client) -> None:
    r = chat(client, TOKEN, "#sim ttfb_ms=300 tokens=2")
    assert r.status_code == 200 and r.elapsed.total_seconds() >= 0.3


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"modeId": "fast"}, "`message`"),
        ({"message": "hi"}, "`modeId`"),
        ({"message": "hi", "modeId": "turbo"}, "unknown modeId"),
        ({"message": 3, "modeId": "fast"}, "`message` must be a string"),
        ({"message": "hi", "modeId": "fast", "temporary": "yes"}, "`temporary`"),
        ({"message": "hi", "modeId": "fast", "fileAttachments": ["nope"]}, "unknown file attachment"),
    ],
)
def test_invalid_bodies_are_rejected_with_400(client: httpx.Client, body: dict, needle: str) -> None:
    r = client.post(CHAT, json=body, headers=headers(TOKEN))
    assert r.status_code == 400
    assert r.json()["code"] == 3 and needle in r.json()["message"] and r.json()["details"] == []


def test_non_json_body_is_rejected(client: httpx.Client) -> None:
    r = client.post(CHAT, content=b"{nope", headers=headers(TOKEN))
    assert r.status_code == 400


def test_follow_up_needs_a_known_conversation_and_response(client: httpx.Client) -> None:
    first = frames(chat(client, TOKEN, "first").text)
    cid = first[0]["result"]["conversation"]["conversationId"]
    parent = responses(first)[0]["userResponse"]["responseId"]
    url = f"/rest/app-chat/conversations/{cid}/responses"
    ok = client.post(url, json=chat_body("second", responseId=parent), headers=headers(TOKEN))
    assert ok.status_code == 200
    assert kinds(frames(ok.text))[0] == "F2"  # no conversation frame on a follow-up
    model_rid = responses(frames(ok.text))[-1]["modelResponse"]["responseId"]
    assert (
        client.post(url, json=chat_body("third", responseId=model_rid), headers=headers(TOKEN)).status_code
        == 200
    )
    assert client.post(url, json=chat_body("x"), headers=headers(TOKEN)).status_code == 400
    assert client.post(url, json=chat_body("x", responseId="nope"), headers=headers(TOKEN)).status_code == 404
    other = client.post(
        "/rest/app-chat/conversations/nope/responses",
        json=chat_body("x", responseId=parent),
        headers=headers(TOKEN),
    )
    assert other.status_code == 404
    foreign = client.post(url, json=chat_body("x", responseId=parent), headers=headers("sim-super-mallory"))
    assert foreign.status_code == 404


async def test_per_frame_writes_every_frame_on_its_own_without_a_pause() -> None:
    """`per_frame` is the bench's model of a fast grok.com answer: one body write per frame."""
    state = SimState("http://127.0.0.1:1")
    account = state.accounts.register("sim-super-perframe")
    bodies: list[bytes] = []

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])

    for directive, writes in (("tokens=5", 1), ("tokens=5 per_frame", None)):
        stream = stream_chat(state, account, chat_body(f"hi #sim {directive}"), None)
        assert isinstance(stream, NDJSONStream)
        bodies.clear()
        await stream({"type": "http"}, None, send)  # type: ignore[arg-type]
        frames = b"".join(bodies).count(b"\n")
        if writes == 1:
            assert len(bodies) == 1 and frames > 5
        else:  # every frame its own write (and the closing empty one), no pause between them
            assert [b.count(b"\n") for b in bodies[:-1]] == [1] * frames and bodies[-1] == b""
