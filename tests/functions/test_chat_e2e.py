"""/v1/chat/completions end to end: the official `openai` SDK -> the gateway (uvicorn, SQLite store)
-> curl_cffi -> the simulator, all on loopback. Every failure knob, with what the client sees and
the state it leaves on the account."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from core.accounts import Account, AccountStatus
from core.catalog import Tier
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, chat_transport, start_gateway

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
FAST = "grok-4.20-0309-non-reasoning"
AUTO = "grok-4.20-0309"
REASONING = "grok-4.20-0309-reasoning-super"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    server = SimServer().start()
    yield server
    server.stop()


Start = Callable[..., Gateway]


@pytest.fixture
def gateway(sim: SimServer, tmp_path: Path) -> Iterator[Start]:
    started: list[Gateway] = []
    sim.reset()

    def start(tokens: list[tuple[str, Tier]], **env: str) -> Gateway:
        settings = {
            "GROKGATE_UPSTREAM_URL": sim.url,
            "GROKGATE_ASSETS_URL": sim.url,
            "GROKGATE_RETRY_BUDGET": "0",
            **{f"GROKGATE_{k.upper()}": v for k, v in env.items()},
        }
        gw = start_gateway(settings, tmp_path, tokens)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


_clients: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def client(gw: Gateway) -> openai.OpenAI:
    oai = openai.OpenAI(base_url=gw.url + "/v1", api_key="test", max_retries=0, timeout=30)
    _clients.append(oai)
    return oai


def accounts(gw: Gateway) -> dict[str, Account]:
    """The pool once every lease is back: a stream's lease is released just after its last write."""
    deadline = time.monotonic() + 3
    while True:
        page = gw.call(gw.deps.store.list(limit=100))
        if all(a.in_flight == 0 for a in page.items) or time.monotonic() > deadline:
            return {a.token: a for a in page.items}
        time.sleep(0.02)


def accounts_now(gw: Gateway) -> dict[str, Account]:
    return {a.token: a for a in gw.call(gw.deps.store.list(limit=100)).items}


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


# --- normal paths -------------------------------------------------------------------------------


def test_non_stream_object(gateway: Start) -> None:
    gw = gateway([("sim-super-alice", Tier.SUPER)])
    result = client(gw).chat.completions.create(model=AUTO, messages=ask("Hi #sim tokens=30 think=0"))
    assert result.object == "chat.completion"
    assert result.choices[0].finish_reason == "stop"
    assert result.choices[0].message.content and len(result.choices[0].message.content.split()) >= 20
    assert result.usage is not None and result.usage.completion_tokens > 0
    acc = accounts(gw)["sim-super-alice"]
    assert acc.in_flight == 0 and acc.use_count == 1 and acc.status is AccountStatus.ACTIVE


def test_stream_with_reasoning_and_usage(gateway: Start) -> None:
    gw = gateway([("sim-super-alice", Tier.SUPER)])
    stream = client(gw).chat.completions.create(
        model=REASONING,
        messages=ask("Why? #sim tokens=40 think=12 delay_ms=1"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert reasoning and content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens > 0  # type: ignore[union-attr]
    assert accounts(gw)["sim-super-alice"].in_flight == 0


def test_reasoning_off(gateway: Start) -> None:
    gw = gateway([("sim-super-alice", Tier.SUPER)])
    oai = client(gw)
    result = oai.chat.completions.create(
        model=REASONING, messages=ask("x #sim tokens=10 think=8"), reasoning_effort="none"
    )
    assert getattr(result.choices[0].message, "reasoning_content", None) is None
    chunks = list(
        oai.chat.completions.create(
            model=REASONING, messages=ask("x #sim tokens=10 think=8"), reasoning_effort="none", stream=True
        )
    )
    assert not any(getattr(c.choices[0].delta, "reasoning_content", None) for c in chunks if c.choices)
    on = oai.chat.completions.create(
        model=REASONING, messages=ask("x #sim tokens=10 think=8"), reasoning_effort="high"
    )
    assert getattr(on.choices[0].message, "reasoning_content", None)


def test_multimodal_image_is_uploaded_to_the_leased_account(gateway: Start, sim: SimServer) -> None:
    gw = gateway([("sim-super-alice", Tier.SUPER)])
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    result = client(gw).chat.completions.create(
        model=AUTO,
        messages=[
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this? #sim tokens=5"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            },
        ],
    )
    assert result.choices[0].message.content
    upload = sim.log.last(path="/rest/app-chat/upload-file")
    assert base64.b64decode(upload.json["content"]) == PNG
    assert upload.cookies["sso"] == "sim-super-alice"
    chat = sim.log.last_chat()
    assert len(chat.file_ids) == 1
    assert chat.message.startswith("[system]: Be brief.\n\n[user]: What is this?")


def test_private_image_url_is_refused_before_any_lease(gateway: Start, sim: SimServer) -> None:
    gw = gateway([("sim-super-alice", Tier.SUPER)])
    with pytest.raises(openai.BadRequestError) as info:
        client(gw).chat.completions.create(
            model=AUTO,
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": sim.url + "/x.png"}}]}
            ],
        )
    assert "private or internal" in info.value.message
    assert info.value.body["param"] == "messages[0].content[0].image_url.url"  # type: ignore[index]
    assert accounts(gw)["sim-super-alice"].use_count == 0


def test_bad_parameters_are_400s(gateway: Start) -> None:
    gw = gateway([("sim-super-alice", Tier.SUPER)])
    for kwargs, param in (
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"temperature": 5}, "temperature"),
    ):
        with pytest.raises(openai.BadRequestError) as info:
            client(gw).chat.completions.create(model=AUTO, messages=ask("x"), **kwargs)
        assert info.value.body["param"] == param  # type: ignore[index]


def test_stop_and_max_tokens_are_honoured(gateway: Start) -> None:
    gw = gateway([("sim-super-alice", Tier.SUPER)])
    result = client(gw).chat.completions.create(model=FAST, messages=ask("x #sim tokens=200"), max_tokens=5)
    assert result.choices[0].finish_reason == "length"
    assert len((result.choices[0].message.content or "").split()) <= 5


# --- failures ----------------------------------------------------------------------------------


# Over the gateway WebSocket the same accounts fail in that transport's own words: the identity
# call reports a dead session, a refused handshake has a status but no body, and a spent quota
# comes as an in-band error. The account's fate (status, refund, cooling) is the same.
WS_WORDS = {
    "sim-super-expired-a": ("account_expired", "identity call: unauthenticated"),
    "sim-super-unauth-a": ("account_expired", "identity call: unauthenticated"),
    "sim-super-ratelimited-a": ("usage_limit_reached", "usage limit"),
    "sim-super-challenge-a": ("upstream_challenge", "HTTP 403"),
}


@pytest.mark.parametrize(
    ("token", "prompt", "error", "code", "status", "reason"),
    [
        (
            "sim-super-expired-a",
            "x",
            openai.APIStatusError,
            "account_expired",
            AccountStatus.EXPIRED,
            "invalid-credentials",
        ),
        (
            "sim-super-unauth-a",
            "x",
            openai.APIStatusError,
            "account_expired",
            AccountStatus.EXPIRED,
            "HTTP 401",
        ),
        (
            "sim-super-blocked-a",
            "x",
            openai.APIStatusError,
            "account_blocked",
            AccountStatus.BLOCKED,
            "blocked",
        ),
        (
            "sim-super-ratelimited-a",
            "x",
            openai.RateLimitError,
            "upstream_rate_limited",
            AccountStatus.COOLING,
            "HTTP 429",
        ),
        (
            "sim-super-challenge-a",
            "x",
            openai.APIStatusError,
            "upstream_challenge",
            AccountStatus.ACTIVE,
            "Cloudflare",
        ),
        (
            "sim-super-antibot-a",
            "x",
            openai.APIStatusError,
            "anti_bot_rejected",
            AccountStatus.ACTIVE,
            "anti-bot",
        ),
        (
            "sim-super-flaky1-a",
            "x",
            openai.APIStatusError,
            "upstream_overloaded",
            AccountStatus.ACTIVE,
            "HTTP 503",
        ),
        (
            "sim-super-a",
            "x #sim inband_error",
            openai.APIStatusError,
            "anti_bot_rejected",
            AccountStatus.ACTIVE,
            "in-band",
        ),
        (
            "sim-super-a",
            "x #sim usage_limit",
            openai.RateLimitError,
            "usage_limit_reached",
            AccountStatus.COOLING,
            "usage limit",
        ),
        (
            "sim-super-a",
            "x #sim empty",
            openai.APIStatusError,
            "empty_response",
            AccountStatus.ACTIVE,
            "without any answer",
        ),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["object", "stream"])
def test_failure_before_the_first_byte(
    gateway: Start,
    token: str,
    prompt: str,
    error: type[Exception],
    code: str,
    status: AccountStatus,
    reason: str,
    stream: bool,
) -> None:
    if chat_transport() == "ws":
        code, reason = WS_WORDS.get(token, (code, reason))
    gw = gateway([(token, Tier.SUPER)])
    before = accounts(gw)[token].quotas["auto"].remaining
    with pytest.raises(error) as info:
        result = client(gw).chat.completions.create(model=AUTO, messages=ask(prompt), stream=stream)
        if stream:
            list(result)  # type: ignore[arg-type]
    assert info.value.body["code"] == code  # type: ignore[attr-defined]
    acc = accounts(gw)[token]
    assert acc.status is status
    assert reason.lower() in acc.reason.lower()
    assert acc.in_flight == 0 and acc.fail_count == 1
    assert acc.quotas["auto"].remaining == (0 if status is AccountStatus.COOLING else before)  # refunded
    if status is AccountStatus.COOLING:
        assert acc.cooling_until > time.time()
        assert int(info.value.response.headers.get("retry-after", "0")) > 0  # type: ignore[attr-defined]


def test_flaky_account_recovers_and_a_retry_never_reuses_it(gateway: Start) -> None:
    gw = gateway([("sim-super-flaky1-b", Tier.SUPER)], retry_budget="2")
    oai = client(gw)
    with pytest.raises(openai.InternalServerError) as info:
        oai.chat.completions.create(model=AUTO, messages=ask("x #sim tokens=3"))
    assert info.value.status_code == 503
    assert oai.chat.completions.create(model=AUTO, messages=ask("x #sim tokens=3")).choices[0].message.content
    acc = accounts(gw)["sim-super-flaky1-b"]
    assert acc.status is AccountStatus.ACTIVE and acc.in_flight == 0 and acc.use_count == 1


def test_midstream_drop_ends_with_an_error_chunk(gateway: Start) -> None:
    gw = gateway([("sim-super-a", Tier.SUPER)])
    got: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client(gw).chat.completions.create(
            model=AUTO, messages=ask("x #sim tokens=50 midstream_drop=10"), stream=True
        ):
            if chunk.choices:
                got.append(chunk.choices[0].delta.content or "")
    assert "".join(got)  # the part that came before the drop was delivered
    assert "broke off" in info.value.message or "ended before" in info.value.message
    acc = accounts(gw)["sim-super-a"]
    assert acc.status is AccountStatus.ACTIVE and acc.in_flight == 0 and acc.fail_count == 1
    assert acc.quotas["auto"].remaining == acc.quotas["auto"].total - 1  # spent: the upstream answered


def test_failover_through_bad_accounts(gateway: Start) -> None:
    bad = [
        ("sim-basic-expired-f", Tier.BASIC),
        ("sim-basic-blocked-f", Tier.BASIC),
        ("sim-basic-ratelimited-f", Tier.BASIC),
    ]
    gw = gateway([*bad, ("sim-super-good", Tier.SUPER)], retry_budget="3")
    for stream in (False, True):
        result = client(gw).chat.completions.create(
            model=AUTO, messages=ask("x #sim tokens=5"), stream=stream
        )
        if stream:
            assert "".join(c.choices[0].delta.content or "" for c in result if c.choices)  # type: ignore[union-attr]
    state = accounts(gw)
    assert state["sim-basic-expired-f"].status is AccountStatus.EXPIRED
    assert state["sim-basic-blocked-f"].status is AccountStatus.BLOCKED
    assert state["sim-basic-ratelimited-f"].status is AccountStatus.COOLING
    assert state["sim-super-good"].use_count == 2
    assert all(a.in_flight == 0 for a in state.values())


def test_no_usable_account(gateway: Start) -> None:
    gw = gateway([("sim-super-expired-n", Tier.SUPER)])
    oai = client(gw)
    with pytest.raises(openai.APIStatusError):
        oai.chat.completions.create(model=AUTO, messages=ask("x"))
    with pytest.raises(openai.APIStatusError) as info:
        oai.chat.completions.create(model=AUTO, messages=ask("x"))
    assert info.value.status_code == 503
    assert "tier basic/super/heavy" in info.value.message and "mode 'auto'" in info.value.message
    gw2 = gateway([("sim-super-ratelimited-n", Tier.SUPER)])
    with pytest.raises(openai.RateLimitError):
        client(gw2).chat.completions.create(model="grok-4.20-0309-super", messages=ask("x"))
    with pytest.raises(openai.RateLimitError) as limited:
        client(gw2).chat.completions.create(model="grok-4.20-0309-super", messages=ask("x"))
    assert "cooling down" in limited.value.message and "tier super/heavy" in limited.value.message


def assert_let_go(gw: Any, connections: Any) -> None:
    """Within 5 s: alice's lease released as a cancellation (no failure held against her) and
    no upstream connection left busy (an idle keep-alive one, e.g. of the identity call that
    precedes a WebSocket chat, has answered everything it was asked)."""

    def busy() -> list[Any]:
        return [
            c for c in list(connections) if not getattr(getattr(c, "cycle", None), "response_complete", False)
        ]

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (accounts(gw)["sim-super-alice"].in_flight or busy()):
        time.sleep(0.05)
    acc = accounts(gw)["sim-super-alice"]
    assert acc.in_flight == 0 and acc.status is AccountStatus.ACTIVE and acc.fail_count == 0
    assert not busy()


def test_disconnect_mid_stream_frees_the_lease_and_stops_the_upstream(gateway: Start, sim: SimServer) -> None:
    gw = gateway([("sim-super-alice", Tier.SUPER)])
    connections = sim._server.server_state.connections
    body = {"model": AUTO, "stream": True, "messages": ask("x #sim tokens=3000 delay_ms=10")}
    with (
        httpx.Client(timeout=10) as http,
        http.stream("POST", gw.url + "/v1/chat/completions", json=body) as response,
    ):
        lines = response.iter_lines()
        for _ in range(5):
            next(lines)
        assert accounts_now(gw)["sim-super-alice"].in_flight == 1
        assert len(connections) >= 1
    assert_let_go(gw, connections)  # the simulator saw the upstream connection close


def test_disconnect_before_the_first_token_frees_the_lease_and_stops_the_upstream(
    gateway: Start, sim: SimServer
) -> None:
    # The first token would come after 20 seconds: the client leaves while the gateway holds.
    gw = gateway([("sim-super-alice", Tier.SUPER)])
    connections = sim._server.server_state.connections
    body = {"model": AUTO, "stream": True, "messages": ask("x #sim tokens=5 delay_ms=20000")}
    with httpx.Client(timeout=0.3) as http, pytest.raises(httpx.ReadTimeout):
        http.post(gw.url + "/v1/chat/completions", json=body)
    assert_let_go(gw, connections)  # aborted before the first token was due


def test_heartbeat_during_silence(gateway: Start) -> None:
    gw = gateway([("sim-super-alice", Tier.SUPER)], heartbeat_seconds="0.2")
    body = {"model": AUTO, "stream": True, "messages": ask("x #sim tokens=3 delay_ms=700")}
    with (
        httpx.Client(timeout=10) as http,
        http.stream("POST", gw.url + "/v1/chat/completions", json=body) as response,
    ):
        text = "".join(response.iter_text())
    assert ": keep-alive\n\n" in text
    assert text.endswith("data: [DONE]\n\n")
