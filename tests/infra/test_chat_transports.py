"""`ChatTransports`: which transport a chat takes under rest, ws and auto, and when an account
moves to the gateway socket and back. Fakes stand in for the two transports (their own tests and
the end-to-end suites drive the real ones against the simulator); the records are the real
SQLite record store, shared by two routers as by two instances."""

from __future__ import annotations

from typing import Any

import pytest

from core.protocol.classify import Kind, UpstreamFailure, classify_http
from core.settings import Settings
from infra.state.sqlite_records import SQLiteRecordStore
from infra.upstream.chat_router import RECHECK_SECONDS, ChatTransports, account_key, moves_to_socket

CHAT = {"modeId": "auto", "message": "hi"}
VIDEO = {"modelName": "imagine-video-gen", "message": "a cat", "mediaGenInput": {}}


class FakeRest:
    """The REST client: answers "rest", or raises the failure it was given."""

    def __init__(self) -> None:
        self.failure: UpstreamFailure | None = None
        self.calls = 0

    async def chat(self, token: str, body: dict[str, Any]) -> str:
        self.calls += 1
        if self.failure is not None and "modeId" in body:
            raise self.failure
        return "rest"

    def session(self) -> None:
        return None

    async def note_failure(self, failure: UpstreamFailure) -> None:
        self.noted = failure

    async def aclose(self) -> None:
        return None


class FakeSocket:
    def __init__(self) -> None:
        self.calls = 0

    async def chat(self, token: str, body: dict[str, Any]) -> str:
        self.calls += 1
        return "ws"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def router(mode: str, *, records: Any = None, clock: Clock | None = None) -> ChatTransports:
    settings = Settings.from_env({"GROKGATE_CHAT_TRANSPORT": mode, "GROKGATE_WS_FALLBACK_SECONDS": "600"})
    return ChatTransports(
        settings,
        FakeRest(),  # type: ignore[arg-type]
        FakeSocket(),  # type: ignore[arg-type]
        records=records,
        clock=clock or Clock(),
    )


@pytest.mark.parametrize(
    ("failure", "moves"),
    [
        (classify_http(403, b'{"code":7,"message":"Request rejected by anti-bot rules"}'), True),
        (classify_http(404, b"not found"), True),
        (classify_http(410, b"gone"), True),
        (classify_http(403, b"<html>Just a moment...</html>"), False),  # Cloudflare: the egress, not REST
        (classify_http(429, b"too many requests"), False),
        (classify_http(401, b""), False),
        (UpstreamFailure(Kind.TRANSIENT, "reset"), False),
    ],
)
def test_what_moves_an_account_to_the_socket(failure: UpstreamFailure, moves: bool) -> None:
    assert moves_to_socket(failure) is moves


async def test_rest_and_ws_modes_pin_the_transport() -> None:
    assert await router("rest").chat("t", CHAT) == "rest"
    assert await router("ws").chat("t", CHAT) == "ws"


async def test_media_generations_always_take_rest() -> None:
    assert await router("ws").chat("t", VIDEO) == "rest"


async def test_auto_moves_a_refused_account_within_the_same_call_and_back_later() -> None:
    clock = Clock()
    r = router("auto", clock=clock)
    rest: FakeRest = r.rest  # type: ignore[assignment]
    rest.failure = classify_http(403, b'{"code":7,"message":"Request rejected by anti-bot rules"}')
    assert await r.chat("alice", CHAT) == "ws"  # one REST attempt, then the socket, in one call
    assert rest.calls == 1
    assert await r.chat("alice", CHAT) == "ws"  # straight to the socket now
    assert rest.calls == 1
    assert await r.chat("bob", CHAT) == "ws" and rest.calls == 2  # bob is judged on his own
    rest.failure = None
    assert await r.transport_of("alice") == "ws"
    clock.now += 601  # the fallback time is over: REST again
    assert await r.chat("alice", CHAT) == "rest"
    assert await r.transport_of("alice") == "rest"


async def test_auto_keeps_other_failures_for_the_chat_service() -> None:
    r = router("auto")
    r.rest.failure = classify_http(429, b"rate limit")  # type: ignore[attr-defined]
    with pytest.raises(UpstreamFailure) as info:
        await r.chat("alice", CHAT)
    assert info.value.kind is Kind.RATE_LIMITED
    assert r.gateway.calls == 0  # type: ignore[attr-defined]


async def test_a_move_is_shared_through_the_records(tmp_path: Any) -> None:
    records = SQLiteRecordStore(tmp_path / "records.db")
    clock = Clock()
    first, second = router("auto", records=records, clock=clock), router("auto", records=records, clock=clock)
    try:
        assert await second.chat("alice", CHAT) == "rest"  # the second instance has read "rest"
        first.rest.failure = classify_http(410, b"gone")  # type: ignore[attr-defined]
        assert await first.chat("alice", CHAT) == "ws"
        clock.now += RECHECK_SECONDS + 1  # the second instance reads the records again
        assert await second.chat("alice", CHAT) == "ws"
        assert second.rest.calls == 1  # type: ignore[attr-defined]
        value, _ = await records.read(f"chat-socket:{account_key('alice')}", now=clock.now)
        assert value is not None and value["until"] > clock.now
    finally:
        await records.aclose()


async def test_the_rest_clients_other_calls_pass_through() -> None:
    r = router("auto")
    failure = UpstreamFailure(Kind.ANTI_BOT, "in-band")
    await r.note_failure(failure)  # the chat service's hook after an in-band anti-bot refusal
    assert r.rest.noted is failure  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        r.no_such_call  # noqa: B018
