"""The JobStore contract on the SQLite adapter: one claim wins, expired claims are taken over as a
new attempt, a superseded runner cannot write, and exhausted jobs fail instead of hanging."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.ports import Job, JobStatus
from infra.jobs.sqlite import ABANDONED, SQLiteJobStore

NOW = 1_800_000_000.0


def job(job_id: str = "video_1", created: float = NOW) -> Job:
    return Job(job_id, "video", JobStatus.QUEUED, {"prompt": "x", "seconds": 6}, created, created)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteJobStore]:
    s = SQLiteJobStore(tmp_path / "jobs.db")
    yield s
    await s.close()


async def test_create_and_get_round_trip(store):
    await store.create(job())
    got = await store.get("video_1")
    assert got is not None and got.status is JobStatus.QUEUED and got.params == {"prompt": "x", "seconds": 6}
    assert await store.get("video_nope") is None


async def test_one_claim_wins_among_concurrent_stores_on_one_file(tmp_path):
    path = tmp_path / "shared.db"
    stores = [SQLiteJobStore(path) for _ in range(6)]
    try:
        await stores[0].create(job())
        claims = await asyncio.gather(*(s.claim("video_1", now=NOW, ttl=60, max_attempts=3) for s in stores))
        winners = [c for c in claims if c is not None]
        assert len(winners) == 1 and winners[0].attempt == 1
        got = await stores[1].get("video_1")
        assert got is not None and got.status is JobStatus.IN_PROGRESS and got.claim_id == winners[0].claim_id
    finally:
        for s in stores:
            await s.close()


async def test_live_claim_blocks_expired_claim_is_taken_over_and_the_old_runner_cannot_write(store):
    await store.create(job())
    first = await store.claim("video_1", now=NOW, ttl=60, max_attempts=3)
    assert first is not None
    assert await store.claim("video_1", now=NOW + 59, ttl=60, max_attempts=3) is None
    assert await store.progress(first, 40, now=NOW + 50, ttl=60)  # the heartbeat extends the claim
    assert await store.claim("video_1", now=NOW + 100, ttl=60, max_attempts=3) is None
    second = await store.claim("video_1", now=NOW + 111, ttl=60, max_attempts=3)
    assert second is not None and second.attempt == 2
    assert not await store.progress(first, 50, now=NOW + 112, ttl=60)
    assert not await store.complete(first, {"video": "x.mp4"}, now=NOW + 112)
    assert not await store.fail(first, "boom", "boom", now=NOW + 112)
    assert await store.complete(second, {"video": "y.mp4"}, now=NOW + 113)
    done = await store.get("video_1")
    assert done is not None and done.status is JobStatus.COMPLETED and done.progress == 100
    assert done.result == {"video": "y.mp4"} and done.completed_at == NOW + 113
    assert await store.claim("video_1", now=NOW + 999, ttl=60, max_attempts=3) is None


async def test_progress_never_goes_back(store):
    await store.create(job())
    claim = await store.claim("video_1", now=NOW, ttl=60, max_attempts=3)
    assert claim is not None
    await store.progress(claim, 70, now=NOW, ttl=60)
    await store.progress(claim, 20, now=NOW, ttl=60)
    got = await store.get("video_1")
    assert got is not None and got.progress == 70


async def test_exhausted_attempts_fail_the_job_instead_of_leaving_it_in_progress(store):
    await store.create(job())
    assert await store.claim("video_1", now=NOW, ttl=10, max_attempts=1) is not None
    assert await store.due(now=NOW + 5, limit=10) == []
    assert await store.due(now=NOW + 11, limit=10) == ["video_1"]
    assert await store.claim("video_1", now=NOW + 11, ttl=10, max_attempts=1) is None
    got = await store.get("video_1")
    assert got is not None and got.status is JobStatus.FAILED and got.error_code == ABANDONED
    assert await store.due(now=NOW + 20, limit=10) == []


async def test_fail_records_the_error(store):
    await store.create(job())
    claim = await store.claim("video_1", now=NOW, ttl=10, max_attempts=2)
    assert claim is not None
    assert await store.fail(claim, "content_policy_violation", "blocked", now=NOW + 1)
    got = await store.get("video_1")
    assert got is not None and got.status is JobStatus.FAILED
    assert (got.error_code, got.error_message, got.completed_at) == (
        "content_policy_violation",
        "blocked",
        NOW + 1,
    )


async def test_due_lists_queued_and_abandoned_jobs_oldest_first(store):
    await store.create(job("video_b", NOW + 1))
    await store.create(job("video_a", NOW))
    await store.create(job("video_c", NOW + 2))
    assert await store.claim("video_c", now=NOW, ttl=10, max_attempts=2) is not None
    assert await store.due(now=NOW + 1, limit=10) == ["video_a", "video_b"]
    assert await store.due(now=NOW + 20, limit=10) == ["video_a", "video_b", "video_c"]
    assert await store.due(now=NOW + 20, limit=1) == ["video_a"]
