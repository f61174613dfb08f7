"""The one failover loop (`core.services.leasing`) without HTTP: the chat and image services over
`FakeUpstream(handler)` and the real embedded SQLite store.

What is checked is what the store ends up holding (status, cooling, quota, in flight) and what
the upstream was asked (`fake.calls`), never the loop's insides.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from core.accounts import AccountStatus, NewAccount, account_id_for
from core.catalog import Tier, get_model
from core.errors import GatewayError, Overloaded, RateLimited, UpstreamError
from core.events import Fault, Finish, TextDelta
from core.ports import JobStatus
from core.protocol.classify import Kind, UpstreamFailure, classify_http, transport_failure
from core.services.chat import ChatService
from core.services.images import ImageRequest, ImageService
from core.services.leasing import Leasing, Started
from core.services.videos import VideoService, check_request
from core.settings import Settings
from core.transcode.normalize import ChatRequest
from infra.jobs.sqlite import SQLiteJobStore
from infra.media.local import LocalMediaStore
from infra.state.sqlite import SQLiteAccountStore
from infra.upstream.fake import Call, FakeUpstream, answer, inband_error

NOW = 1_000_000.0
FAST = get_model("grok-4.20-0309-non-reasoning")
IMAGINE = get_model("grok-imagine-image")  # the Imagine WebSocket round (E4)
TOKENS = ("tok-a", "tok-b", "tok-c")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteAccountStore]:
    store = SQLiteAccountStore(tmp_path / "accounts.db")
    await store.add([NewAccount(t, Tier.BASIC) for t in TOKENS], NOW)
    yield store
    await store.aclose()


def chat_service(store: SQLiteAccountStore, fake: FakeUpstream, **settings: Any) -> ChatService:
    return ChatService(Settings(**settings), store, fake, clock=lambda: NOW)


def failing_first(
    n: int, failure: Callable[[], UpstreamFailure], kind: str = "chat"
) -> Callable[[Call], Any]:
    """A handler whose first `n` calls of `kind` fail with `failure()`; the others answer."""
    seen: list[Call] = []

    def handler(call: Call) -> Any:
        if call.kind == kind:
            seen.append(call)
            if len(seen) <= n:
                raise failure()
        return answer("the tide is water")

    return handler


async def account(store: SQLiteAccountStore, token: str) -> Any:
    return await store.get(account_id_for(token))


def chat_tokens(fake: FakeUpstream) -> list[str]:
    return [c.token for c in fake.calls if c.kind == "chat"]


async def open_and_collect(chat: ChatService) -> tuple[str, list[Any]]:
    stream = await chat.open(ChatRequest(FAST, "What is a tide?"))
    return stream.account_id, await stream.collect()


async def test_a_rate_limited_account_cools_and_the_next_one_answers(store: SQLiteAccountStore) -> None:
    fake = FakeUpstream(failing_first(1, lambda: classify_http(429, "Too many requests")))
    served, events = await open_and_collect(chat_service(store, fake, cooldown_seconds=120))
    first, second = chat_tokens(fake)
    assert first != second and served == account_id_for(second)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "the tide is water"
    assert isinstance(events[-1], Finish)
    cooled = await account(store, first)
    assert cooled.status is AccountStatus.COOLING and cooled.cooling_until == NOW + 120
    assert cooled.in_flight == 0 and cooled.reason.startswith("HTTP 429")
    used = await account(store, second)
    assert used.in_flight == 0 and used.use_count == 1
    assert used.quotas["fast"].remaining == used.quotas["fast"].total - 1


async def test_a_retry_after_from_the_upstream_sets_the_cooling(store: SQLiteAccountStore) -> None:
    fake = FakeUpstream(failing_first(1, lambda: classify_http(429, "Too many requests", retry_after=42)))
    await open_and_collect(chat_service(store, fake))
    assert (await account(store, chat_tokens(fake)[0])).cooling_until == NOW + 42


async def test_an_early_in_band_failure_still_fails_over(store: SQLiteAccountStore) -> None:
    """Nothing is sent before the first meaningful event: a stream that opens (200) and then says
    it is over its usage limit goes to another account, and the client sees only that one."""
    calls: list[str] = []

    def handler(call: Call) -> Any:
        calls.append(call.token)
        if len(calls) == 1:
            conversation = {"result": {"conversation": {"conversationId": "c-1"}}}
            return [conversation, inband_error("You have reached your usage limit")]
        return answer("second account")

    fake = FakeUpstream(handler)
    served, events = await open_and_collect(chat_service(store, fake))
    assert served == account_id_for(calls[1]) and len(calls) == 2
    assert not any(isinstance(e, Fault) for e in events)
    assert (await account(store, calls[0])).status is AccountStatus.COOLING
    assert all(s.closed for s in fake.streams)


async def test_a_failure_after_the_first_event_ends_the_stream_on_that_account(
    store: SQLiteAccountStore,
) -> None:
    fake = FakeUpstream(lambda call: [*answer("half an")[:-1], transport_failure("connection reset")])
    _, events = await open_and_collect(chat_service(store, fake))
    assert len(chat_tokens(fake)) == 1  # the answer had started: no failover
    assert isinstance(events[0], TextDelta) and isinstance(events[-1], Fault)
    spent = await account(store, chat_tokens(fake)[0])
    assert spent.in_flight == 0 and spent.quotas["fast"].remaining == spent.quotas["fast"].total - 1


@pytest.mark.parametrize("budget", [0, 1, 2])
async def test_the_retry_budget_bounds_the_accounts_tried(store: SQLiteAccountStore, budget: int) -> None:
    fake = FakeUpstream(failing_first(9, lambda: classify_http(503, "upstream unavailable")))
    with pytest.raises(GatewayError) as raised:
        await open_and_collect(chat_service(store, fake, retry_budget=budget))
    tried = chat_tokens(fake)
    assert len(tried) == budget + 1 and len(set(tried)) == len(tried)
    assert raised.value.status in (502, 503)
    for token in TOKENS:  # every lease came back, none was held against a transient failure
        assert (await account(store, token)).in_flight == 0


async def test_an_account_already_tried_ends_the_retries(tmp_path: Path) -> None:
    store = SQLiteAccountStore(tmp_path / "one.db")
    await store.add([NewAccount("only")], NOW)
    fake = FakeUpstream(failing_first(9, lambda: transport_failure("reset")))
    with pytest.raises(UpstreamError):
        await open_and_collect(chat_service(store, fake, retry_budget=5))
    assert chat_tokens(fake) == ["only"]
    only = await account(store, "only")
    assert only.in_flight == 0 and only.quotas["fast"].remaining == only.quotas["fast"].total
    await store.aclose()


async def test_a_failure_another_account_cannot_fix_is_not_retried(store: SQLiteAccountStore) -> None:
    fake = FakeUpstream(failing_first(9, lambda: classify_http(400, "bad request")))
    with pytest.raises(GatewayError):
        await open_and_collect(chat_service(store, fake))
    assert len(chat_tokens(fake)) == 1


async def test_when_every_account_is_rate_limited_the_client_is_told_when_to_retry(
    store: SQLiteAccountStore,
) -> None:
    fake = FakeUpstream(failing_first(9, lambda: classify_http(429, "Too many requests")))
    with pytest.raises(RateLimited) as raised:
        await open_and_collect(chat_service(store, fake, cooldown_seconds=300))
    assert raised.value.headers["retry-after"] == "300"
    with pytest.raises(RateLimited) as cooling:  # now none is left: the pool's own 429
        await open_and_collect(chat_service(store, fake))
    assert cooling.value.code == "no_account_available"


async def test_an_image_call_gets_the_same_retry_after_as_chat(store: SQLiteAccountStore) -> None:
    """The Imagine round (E4) fails over like chat, and its last 429 says when to retry."""
    await store.add([NewAccount(f"super-{i}", Tier.SUPER) for i in range(3)], NOW)
    fake = FakeUpstream(failing_first(9, lambda: classify_http(429, "Too many requests"), kind="connect"))
    chat = chat_service(store, fake, cooldown_seconds=300)
    images = ImageService(chat.settings, chat, fake, fake.imagine, media=None)  # type: ignore[arg-type]
    with pytest.raises(RateLimited) as raised:
        await images.generate(ImageRequest(IMAGINE, "a tide", 1, None, "url", "http://gateway.test"))
    assert raised.value.headers["retry-after"] == "300"
    assert len([c for c in fake.calls if c.kind == "connect"]) == 3  # 1 + the default budget of 2


async def test_an_in_band_anti_bot_refusal_is_reported_to_the_upstream(store: SQLiteAccountStore) -> None:
    class Noting(FakeUpstream):
        noted: list[UpstreamFailure] = []

        async def note_failure(self, failure: UpstreamFailure) -> None:
            self.noted.append(failure)

    fake = Noting(failing_first(1, lambda: UpstreamFailure(Kind.ANTI_BOT, "in-band error 7")))
    await open_and_collect(chat_service(store, fake))
    assert [f.kind for f in fake.noted] == [Kind.ANTI_BOT]


async def test_an_empty_pool_is_a_503(tmp_path: Path) -> None:
    store = SQLiteAccountStore(tmp_path / "empty.db")
    with pytest.raises(Overloaded):
        await open_and_collect(chat_service(store, FakeUpstream(lambda call: answer("never"))))
    await store.aclose()


# --- the loop itself, for calls that are not chat answers (images, videos) ---------------------


async def test_a_failure_after_the_work_started_is_final_and_not_refunded(store: SQLiteAccountStore) -> None:
    leasing = Leasing(Settings(), store, lambda: NOW)
    tried: list[str] = []

    async def call(lease: Any) -> None:
        tried.append(lease.token)
        raise Started(transport_failure("the video stream broke off"))

    with pytest.raises(UpstreamError):
        await leasing.run(FAST, call)
    assert len(tried) == 1
    spent = await account(store, tried[0])
    assert spent.in_flight == 0 and spent.quotas["fast"].remaining == spent.quotas["fast"].total - 1


async def test_a_call_that_breaks_otherwise_is_released_as_cancelled(store: SQLiteAccountStore) -> None:
    leasing = Leasing(Settings(), store, lambda: NOW)
    tried: list[str] = []

    async def call(lease: Any) -> None:
        tried.append(lease.token)
        raise KeyError("a bug, not the upstream")

    with pytest.raises(KeyError):
        await leasing.run(FAST, call)
    left = await account(store, tried[0])
    assert len(tried) == 1 and left.in_flight == 0 and left.status is AccountStatus.ACTIVE


async def test_a_success_returns_the_calls_result(store: SQLiteAccountStore) -> None:
    leasing = Leasing(Settings(), store, lambda: NOW)

    async def call(lease: Any) -> str:
        return lease.token

    token = await leasing.run(FAST, call)
    assert (await account(store, token)).use_count == 1


async def test_a_video_job_fails_over_on_a_refused_submit(store: SQLiteAccountStore, tmp_path: Path) -> None:
    """A video's E1 runs in the same loop: the first account's 429 cools it, the next one makes
    the video, the job completes."""
    await store.add([NewAccount(f"super-{i}", Tier.SUPER) for i in range(3)], NOW)
    frame = {"progress": 100, "videoUrl": "/v/clip.mp4", "videoId": "vid-1", "thumbnailImageUrl": ""}
    submits: list[str] = []

    def handler(call: Call) -> Any:
        if call.kind == "chat":
            submits.append(call.token)
            if len(submits) == 1:
                raise classify_http(429, "Too many requests")
            return [{"result": {"response": {"streamingVideoGenerationResponse": frame}}}]
        assert call.kind == "download"
        return b"\x00\x00\x00\x18ftypmp42", "video/mp4"

    jobs = SQLiteJobStore(tmp_path / "jobs.db")
    videos = VideoService(
        Settings(),
        store,
        FakeUpstream(handler),
        LocalMediaStore(tmp_path / "media", b"k"),
        jobs,
        clock=lambda: NOW,
    )
    job = await videos.create(
        check_request(model="grok-imagine-video", prompt="a tide", seconds=6, size="1280x720")
    )
    assert await videos.run(job.id)
    assert (await videos.get(job.id)).status is JobStatus.COMPLETED
    assert len(submits) == 2 and submits[0] != submits[1]
    assert (await account(store, submits[0])).status is AccountStatus.COOLING
    await jobs.aclose()
