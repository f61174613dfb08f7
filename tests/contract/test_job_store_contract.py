"""The `JobStore` contract (core/ports.py), run over every store: SQLite, Redis over TCP, Redis
through the Upstash REST shim with the real `upstash-redis` client, DynamoDB on moto's server.

Claim (one of many concurrent callers wins), heartbeat, lease expiry and takeover, progress that
never goes back, result, failure, steps (`advance`), idempotent create, listing by owner and time.
"""

from __future__ import annotations

import asyncio

from core.ports import Job, JobStatus
from infra.jobs.rules import ABANDONED, abandoned_message
from tests.fixtures.stores import open_job_store

NOW = 1_800_000_000.0


def job(job_id: str = "video_1", created: float = NOW, owner: str = "") -> Job:
    return Job(
        job_id, "video", JobStatus.QUEUED, {"prompt": "x", "seconds": 6}, created, created, owner=owner
    )


async def test_create_get_and_idempotent_create(job_store):
    stored = await job_store.create(job())
    assert stored.status is JobStatus.QUEUED and stored.params == {"prompt": "x", "seconds": 6}
    got = await job_store.get("video_1")
    assert got == stored and got.completed_at is None and got.state == {} and got.owner == ""
    again = await job_store.create(
        Job("video_1", "video", JobStatus.QUEUED, {"prompt": "other"}, NOW + 5, NOW + 5)
    )
    assert again.params == {"prompt": "x", "seconds": 6} and again.created_at == NOW  # the first one stays
    assert await job_store.get("video_nope") is None


async def test_one_claim_wins_among_concurrent_clients(job_store, store_spec):
    await job_store.create(job())
    others = [open_job_store(store_spec) for _ in range(5)]
    try:
        stores = [job_store, *others]
        claims = await asyncio.gather(*(s.claim("video_1", now=NOW, ttl=60, max_attempts=3) for s in stores))
        winners = [c for c in claims if c is not None]
        assert len(winners) == 1 and winners[0].attempt == 1 and winners[0].expires_at == NOW + 60
        got = await others[0].get("video_1")
        assert got.status is JobStatus.IN_PROGRESS and got.claim_id == winners[0].claim_id
    finally:
        for s in others:
            await s.aclose()


async def test_heartbeat_extends_expired_claim_is_taken_over_and_the_old_runner_cannot_write(job_store):
    await job_store.create(job())
    first = await job_store.claim("video_1", now=NOW, ttl=60, max_attempts=3)
    assert first is not None
    assert await job_store.claim("video_1", now=NOW + 59, ttl=60, max_attempts=3) is None
    assert await job_store.progress(first, 40, now=NOW + 50, ttl=60)  # the heartbeat extends the claim
    assert await job_store.claim("video_1", now=NOW + 100, ttl=60, max_attempts=3) is None
    second = await job_store.claim("video_1", now=NOW + 111, ttl=60, max_attempts=3)
    assert second is not None and second.attempt == 2
    assert not await job_store.progress(first, 50, now=NOW + 112, ttl=60)
    assert not await job_store.advance(first, {"stage": "x"}, progress=50, now=NOW + 112, due_at=NOW + 113)
    assert not await job_store.complete(first, {"video": "x.mp4"}, now=NOW + 112)
    assert not await job_store.fail(first, "boom", "boom", now=NOW + 112)
    assert await job_store.complete(second, {"video": "y.mp4"}, now=NOW + 113)
    done = await job_store.get("video_1")
    assert done.status is JobStatus.COMPLETED and done.progress == 100
    assert done.result == {"video": "y.mp4"} and done.completed_at == NOW + 113 and done.attempts == 2
    assert await job_store.claim("video_1", now=NOW + 999, ttl=60, max_attempts=3) is None
    assert await job_store.due(now=NOW + 999, limit=10) == []


async def test_progress_never_goes_back_and_state_is_kept(job_store):
    await job_store.create(job())
    claim = await job_store.claim("video_1", now=NOW, ttl=60, max_attempts=3)
    assert await job_store.progress(claim, 70, now=NOW, ttl=60, state={"stage": "submit", "upstream": "v1"})
    assert await job_store.progress(claim, 20, now=NOW + 1, ttl=60)
    got = await job_store.get("video_1")
    assert got.progress == 70 and got.state == {"stage": "submit", "upstream": "v1"}
    assert got.claim_expires_at == NOW + 61


async def test_steps_release_the_claim_until_the_next_one_is_due(job_store):
    await job_store.create(job())
    claim = await job_store.claim("video_1", now=NOW, ttl=60, max_attempts=1)
    assert await job_store.advance(
        claim, {"stage": "poll", "polls": 1}, progress=30, now=NOW + 1, due_at=NOW + 10
    )
    between = await job_store.get("video_1")
    assert between.status is JobStatus.IN_PROGRESS and between.claim_id == "" and between.progress == 30
    assert between.state == {"stage": "poll", "polls": 1}
    assert await job_store.due(now=NOW + 9, limit=10) == []
    assert await job_store.claim("video_1", now=NOW + 9, ttl=60, max_attempts=1) is None
    assert await job_store.due(now=NOW + 10, limit=10) == ["video_1"]
    # The next step is the same attempt: even with one attempt allowed, it is claimed, not failed.
    nxt = await job_store.claim("video_1", now=NOW + 10, ttl=60, max_attempts=1)
    assert nxt is not None and nxt.attempt == 1
    assert not await job_store.advance(claim, {}, progress=0, now=NOW + 11, due_at=NOW + 12)  # the old claim
    assert await job_store.complete(nxt, {"video": "m"}, now=NOW + 12)


async def test_exhausted_attempts_fail_the_job_instead_of_leaving_it_in_progress(job_store):
    await job_store.create(job())
    assert await job_store.claim("video_1", now=NOW, ttl=10, max_attempts=1) is not None
    assert await job_store.due(now=NOW + 5, limit=10) == []
    assert await job_store.due(now=NOW + 11, limit=10) == ["video_1"]
    assert await job_store.claim("video_1", now=NOW + 11, ttl=10, max_attempts=1) is None
    got = await job_store.get("video_1")
    assert got.status is JobStatus.FAILED and got.error_code == ABANDONED and got.completed_at == NOW + 11
    assert got.error_message == abandoned_message(1)
    assert await job_store.due(now=NOW + 20, limit=10) == []


async def test_fail_records_the_error(job_store):
    await job_store.create(job())
    claim = await job_store.claim("video_1", now=NOW, ttl=10, max_attempts=2)
    assert await job_store.fail(claim, "content_policy_violation", "blocked", now=NOW + 1)
    got = await job_store.get("video_1")
    assert got.status is JobStatus.FAILED
    assert (got.error_code, got.error_message, got.completed_at) == (
        "content_policy_violation",
        "blocked",
        NOW + 1,
    )
    assert await job_store.due(now=NOW + 99, limit=10) == []


async def test_due_lists_queued_and_abandoned_jobs_by_when_they_became_due(job_store):
    await job_store.create(job("video_b", NOW + 1))
    await job_store.create(job("video_a", NOW))
    await job_store.create(job("video_c", NOW + 2))
    assert await job_store.claim("video_c", now=NOW, ttl=10, max_attempts=2) is not None
    assert await job_store.due(now=NOW + 1, limit=10) == ["video_a", "video_b"]
    assert await job_store.due(now=NOW + 20, limit=10) == ["video_a", "video_b", "video_c"]
    assert await job_store.due(now=NOW + 20, limit=1) == ["video_a"]


async def test_list_by_owner_and_time_with_after_limit_order_and_delete(job_store):
    for i in range(5):
        await job_store.create(job(f"video_{i}", NOW + i, owner="alice"))
    await job_store.create(job("video_bob", NOW + 2.5, owner="bob"))
    ids = lambda jobs: [j.id for j in jobs]  # noqa: E731
    assert ids(await job_store.list("alice")) == [f"video_{i}" for i in (4, 3, 2, 1, 0)]
    assert ids(await job_store.list("alice", order="asc", limit=2)) == ["video_0", "video_1"]
    assert ids(await job_store.list("alice", order="asc", after="video_1", limit=2)) == ["video_2", "video_3"]
    assert ids(await job_store.list("alice", after="video_3", limit=10)) == ["video_2", "video_1", "video_0"]
    assert ids(await job_store.list("alice", after="video_bob")) == []  # not one of alice's
    assert ids(await job_store.list("bob")) == ["video_bob"]
    assert ids(await job_store.list("carol")) == []
    assert await job_store.delete("video_2")
    assert not await job_store.delete("video_2")
    assert await job_store.get("video_2") is None
    assert ids(await job_store.list("alice", order="asc")) == ["video_0", "video_1", "video_3", "video_4"]
    assert "video_2" not in await job_store.due(now=NOW + 99, limit=10)
