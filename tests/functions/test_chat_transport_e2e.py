"""The chat transports end to end: the gateway, the official SDKs and the simulator over loopback.

`GROKGATE_CHAT_TRANSPORT=ws` sends every chat over the gateway WebSocket (the whole chat,
Responses and Messages suites also run that way: `make test` runs them once per transport);
`auto` starts on REST and moves an account to the socket when REST refuses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from core.catalog import Tier
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, gateways

REASONING = "grok-4.20-0309-reasoning-super"
AUTO = "grok-4.20-0309"
REST_PATH = "/rest/app-chat/conversations/new"

Start = Callable[..., Gateway]


@pytest.fixture
def gateway(sim: SimServer, tmp_path: Path) -> Iterator[Start]:
    with gateways(sim, tmp_path, retry_budget="0") as start:
        yield lambda transport, tokens, **env: start(tokens, chat_transport=transport, **env)


def oai(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="test", max_retries=0, timeout=30)


def sockets(sim: SimServer) -> list[Any]:
    return [r for r in sim.log if r.kind == "websocket" and r.path.startswith("/ws/mgw")]


def test_ws_streams_reasoning_and_answer_over_the_socket(gateway: Start, sim: SimServer) -> None:
    gw = gateway("ws", [("sim-super-alice", Tier.SUPER)])
    stream = oai(gw).chat.completions.create(
        model=REASONING, stream=True, messages=[{"role": "user", "content": "Why? #sim tokens=6 think=4"}]
    )
    reasoning = answer = ""
    for part in stream:
        if part.choices:
            delta: Any = part.choices[0].delta
            reasoning += getattr(delta, "reasoning_content", None) or ""
            answer += delta.content or ""
    assert len(answer.split()) == 6 and reasoning.strip()
    assert not sim.log.find(REST_PATH)  # nothing went over REST
    (socket,) = sockets(sim)
    user_id = sim.account("sim-super-alice").user_id
    assert socket.query == f"uid={user_id}"
    assert socket.cookies["sso"] == socket.cookies["sso-rw"] == "sim-super-alice"
    assert socket.cookies["x-userid"] == user_id
    assert socket.headers["origin"] == sim.url
    assert "x-statsig-id" not in socket.headers  # the socket carries no statsig
    kinds = [m["event"]["type"] for m in socket.ws_messages]
    assert kinds == ["session.create", "conversation.item.create", "response.create"]
    assert socket.ws_messages[0]["event"]["session"]["model"] == "expert"  # the reasoning model's mode
    assert sim.log.last_chat().message.endswith("Why? #sim tokens=6 think=4")


def test_ws_looks_up_the_user_id_once_per_account(gateway: Start, sim: SimServer) -> None:
    gw = gateway("ws", [("sim-super-alice", Tier.SUPER)])
    for _ in range(3):
        oai(gw).chat.completions.create(model=AUTO, messages=[{"role": "user", "content": "x #sim tokens=2"}])
    assert len(sim.log.find("/api/auth/session")) == 1
    assert len(sockets(sim)) == 3


def test_ws_messages_with_a_tool_round_trip(gateway: Start, sim: SimServer) -> None:
    gw = gateway("ws", [("sim-super-alice", Tier.SUPER)])
    client = anthropic.Anthropic(base_url=gw.url, api_key="test", max_retries=0)
    tools: Any = [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    first = client.messages.create(
        model=AUTO,
        max_tokens=200,
        tools=tools,
        messages=[{"role": "user", "content": 'Weather? #sim tool=get_weather args={"city":"Oslo"}'}],
    )
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.input == {"city": "Oslo"}
    second = client.messages.create(
        model=AUTO,
        max_tokens=200,
        tools=tools,
        messages=[
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21C #sim tokens=3"}
                ],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    assert "Sunny, 21C" in sim.log.last_chat().message
    assert sim.log.last_chat().transport == "ws"


@pytest.mark.parametrize("refusal", ["antibot", "retired"])
def test_auto_moves_a_refused_account_to_the_socket_within_one_call(
    gateway: Start, sim: SimServer, refusal: str
) -> None:
    token = "sim-super-restantibot-alice" if refusal == "antibot" else "sim-super-alice"
    if refusal == "retired":
        sim.config.rest_chat_status = 410
    gw = gateway("auto", [(token, Tier.SUPER)])
    client = oai(gw)
    first = client.chat.completions.create(
        model=AUTO, messages=[{"role": "user", "content": "x #sim tokens=3"}]
    )
    assert len((first.choices[0].message.content or "").split()) == 3  # the client saw one good answer
    # REST is refused, then the socket serves. An anti-bot refusal is first taken for a stale
    # signature: REST is tried once more with a fresh x-statsig-id before the account moves.
    rest_tries = 2 if refusal == "antibot" else 1
    assert len(sim.log.find(REST_PATH)) == rest_tries and len(sockets(sim)) == 1
    second = client.chat.completions.create(
        model=AUTO, stream=True, messages=[{"role": "user", "content": "y #sim tokens=4"}]
    )
    assert len("".join(p.choices[0].delta.content or "" for p in second if p.choices).split()) == 4
    assert len(sim.log.find(REST_PATH)) == rest_tries and len(sockets(sim)) == 2  # straight to the socket
    account = gw.call(gw.deps.store.list(limit=10)).items[0]
    assert account.fail_count == 0 and account.reason == ""  # REST's refusal is no fault of the account


def test_auto_goes_back_to_rest_after_the_fallback_time(gateway: Start, sim: SimServer) -> None:
    sim.config.rest_chat_status = 404
    gw = gateway("auto", [("sim-super-alice", Tier.SUPER)], ws_fallback_seconds="0.3")
    client = oai(gw)
    client.chat.completions.create(model=AUTO, messages=[{"role": "user", "content": "x #sim tokens=2"}])
    assert len(sockets(sim)) == 1
    sim.config.rest_chat_status = 0  # REST is back
    import time

    time.sleep(0.4)
    client.chat.completions.create(model=AUTO, messages=[{"role": "user", "content": "x #sim tokens=2"}])
    assert len(sim.log.find(REST_PATH)) == 2 and len(sockets(sim)) == 1


def test_ws_handshake_refusals_are_classified_like_rest(gateway: Start, sim: SimServer) -> None:
    gw = gateway("ws", [("sim-super-flaky1-alice", Tier.SUPER)])
    with pytest.raises(openai.InternalServerError) as info:
        oai(gw).chat.completions.create(model=AUTO, messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 503  # the 503 of the refused handshake, as REST's would be
    account = gw.call(gw.deps.store.list(limit=10)).items[0]
    assert account.in_flight == 0 and "HTTP 503" in account.reason
