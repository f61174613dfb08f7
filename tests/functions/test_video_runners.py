"""The video runners against the simulator: the Videos API routes through the official SDK, the cron
worker (a worker process killed mid-step, two workers racing for one job), failover, and the proof
from the simulator's request log that no job ever sends its generation (E1) twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from core.catalog import Tier
from core.ports import JobStatus
from functions.video_worker import advance
from tests.functions import test_videos_e2e as videos
from tests.functions.test_videos_e2e import KEY, SUPER, poll

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
ROOT = Path(__file__).resolve().parents[2]
E1 = "/rest/app-chat/conversations/new"
gateway, oai = videos.gateway, videos.oai  # the fixtures of the Videos API tests


def generations(sim, marker: str) -> int:
    """How many E1 requests the simulator received for prompts containing `marker`."""
    return sum(1 for r in sim.log if r.path == E1 and marker in str((r.json or {}).get("message", "")))


def test_list_retrieve_delete_remix_and_owners(gateway, oai, sim):
    gw = gateway(SUPER, api_keys=f"{KEY},sk-other")
    client = oai(gw)
    made = [client.videos.create(prompt=f"clip {i}") for i in range(3)]
    for video in made:
        assert poll(client, video.id)[0].status == "completed"
    page = client.videos.list(limit=2)
    assert [v.id for v in page.data] == [made[2].id, made[1].id] and page.has_more
    rest = client.videos.list(limit=2, after=made[1].id)
    assert [v.id for v in rest.data] == [made[0].id] and not rest.has_more
    assert [v.id for v in client.videos.list(order="asc").data] == [v.id for v in made]
    assert [v.id for v in client.videos.list(limit=1)] == [v.id for v in reversed(made)]  # the SDK pages on
    assert [v.id for v in client.videos.list(limit=1, order="asc", after=made[0].id).data] == [made[1].id]
    done = client.videos.retrieve(made[0].id)
    assert done.expires_at is not None and done.expires_at > done.completed_at

    other = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-other", max_retries=0)
    try:
        assert other.videos.list().data == []  # jobs belong to the key that made them
        with pytest.raises(openai.NotFoundError):
            other.videos.retrieve(made[0].id)
        with pytest.raises(openai.NotFoundError):
            other.videos.delete(made[0].id)
        with pytest.raises(openai.NotFoundError):
            other.videos.download_content(made[0].id)
    finally:
        other.close()

    remixed = client.videos.remix(made[0].id, prompt="the same clip at night")
    assert remixed.remixed_from_video_id == made[0].id and remixed.prompt == "the same clip at night"
    assert poll(client, remixed.id)[0].status == "completed"
    assert client.videos.download_content(remixed.id).content[4:8] == b"ftyp"

    deleted = client.videos.delete(made[1].id)
    assert deleted.deleted and deleted.object == "video.deleted" and deleted.id == made[1].id
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(made[1].id)
    assert made[1].id not in [v.id for v in client.videos.list(limit=10).data]

    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.list(order="sideways")  # type: ignore[arg-type]
    assert caught.value.body["param"] == "order"


def test_an_idempotency_key_makes_a_repeated_create_return_the_first_job(gateway, sim):
    gw = gateway(SUPER)
    headers = {"Authorization": f"Bearer {KEY}", "Idempotency-Key": "req-1"}
    first = httpx.post(gw.url + "/v1/videos", headers=headers, json={"prompt": "idem once #sim delay_ms=20"})
    second = httpx.post(gw.url + "/v1/videos", headers=headers, json={"prompt": "idem once #sim delay_ms=20"})
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    other = httpx.post(
        gw.url + "/v1/videos", headers={**headers, "Idempotency-Key": "req-2"}, json={"prompt": "idem once"}
    )
    assert other.json()["id"] != first.json()["id"]


def test_a_worker_killed_mid_step_loses_nothing_and_e1_is_sent_once(gateway, oai, sim, tmp_path):
    gw = gateway(SUPER, video_runner="cron", job_claim_seconds="1", video_poll_seconds="0.2")
    client = oai(gw)
    video = client.videos.create(prompt="killed worker #sim delay_ms=700")
    settings = gw.deps.settings
    env = {
        **os.environ,
        "GROKGATE_STORE": settings.store,
        "GROKGATE_UPSTREAM_URL": sim.url,
        "GROKGATE_ASSETS_URL": sim.url,
        "GROKGATE_MEDIA": settings.media,
        "GROKGATE_JOB_CLAIM_SECONDS": "1",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "functions.video_worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    try:
        store = gw.deps.job_store
        deadline = time.monotonic() + 20
        while True:  # kill it once the upstream has named the video and reported progress
            job = gw.call(store.get(video.id))
            if job.state.get("video_id") and job.progress > 0:
                break
            assert time.monotonic() < deadline and worker.poll() is None, job
            time.sleep(0.05)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    stalled = client.videos.retrieve(video.id)
    assert stalled.status == "in_progress" and stalled.progress > 0
    time.sleep(1.1)  # the dead worker's claim expires
    for _ in range(20):  # the next runs: poll the upstream's assets, then store the video
        gw.call(advance(gw.deps, budget=10))
        if client.videos.retrieve(video.id).status == "completed":
            break
        time.sleep(0.25)
    done = client.videos.retrieve(video.id)
    assert done.status == "completed" and done.progress == 100
    assert client.videos.download_content(video.id).content[4:8] == b"ftyp"
    assert generations(sim, "killed worker") == 1  # the new run found the video; it never resubmitted
    assert gw.call(store.get(video.id)).attempts == 2


def test_two_workers_racing_for_one_job_send_one_generation(gateway, oai, sim):
    gw = gateway(SUPER, video_runner="cron")
    client = oai(gw)
    video = client.videos.create(prompt="raced job #sim delay_ms=30")

    async def race() -> list[int]:
        return list(await asyncio.gather(*(advance(gw.deps, budget=10) for _ in range(4))))

    ran = gw.call(race(), timeout=30)
    assert sum(ran) >= 1
    assert client.videos.retrieve(video.id).status == "completed"
    assert generations(sim, "raced job") == 1
    assert gw.call(advance(gw.deps, budget=10)) == 0  # the cron fires again: nothing to do


def test_a_repeated_step_after_submission_never_submits_again(gateway, oai, sim):
    """A Step Functions retry (or a cron delivered twice) of a step whose E1 was sent."""
    gw = gateway(SUPER, video_runner="cron", video_poll_seconds="0.05")
    client = oai(gw)
    video = client.videos.create(prompt="delivered twice")
    service = gw.deps.video_service
    first = gw.call(service.step(video.id))
    assert first.status is JobStatus.IN_PROGRESS and first.stage == "store"
    # The task is delivered again: the job's state says submitted, so the step stores, not submits.
    again = gw.call(service.step(video.id))
    assert again.status is JobStatus.COMPLETED
    assert gw.call(service.step(video.id)).status is JobStatus.COMPLETED
    assert generations(sim, "delivered twice") == 1


def test_a_submit_repeated_after_the_stream_was_lost_polls_the_upstream_instead(gateway, oai, sim):
    """A Submit task retried after it had sent E1 and named the video (its stream cut off): the job
    goes to poll, finds the video among the account's assets (E7) and stores it."""
    from infra.sim.pixels import sample_png

    gw = gateway(SUPER, video_runner="cron", video_poll_seconds="0.05")
    client = oai(gw)
    video = client.videos.create(prompt="stream lost")
    service = gw.deps.video_service
    assert gw.call(service.step(video.id)).stage == "store"
    store = gw.deps.job_store
    job = gw.call(store.get(video.id))
    assert job.state["video_id"] and job.state["submitted"]
    for i in range(60):  # newer assets of the account push the video to E7's second page
        gw.call(gw.deps.upstream.upload_file(SUPER[0][0], f"new-{i}.png", "image/png", sample_png()))
    # Rewind the job to the submit step, as if that task's result had been lost.
    claim = gw.call(store.claim(video.id, now=time.time(), ttl=60, max_attempts=3))
    rewound = {k: v for k, v in job.state.items() if k not in ("video_url", "thumbnail_url")}
    gw.call(
        store.advance(claim, {**rewound, "stage": "submit"}, progress=50, now=time.time(), due_at=time.time())
    )
    polled = gw.call(service.step(video.id))
    assert polled.stage == "poll" and polled.wait == 0
    found = gw.call(service.step(video.id))
    assert found.stage == "store"
    listings = [r for r in sim.log if r.path == "/rest/assets"]
    assert len(listings) == 2 and "pageToken=" in listings[-1].query  # found on the second page
    assert gw.call(service.step(video.id)).status is JobStatus.COMPLETED
    assert client.videos.download_content(video.id).content[4:8] == b"ftyp"
    assert generations(sim, "stream lost") == 1


def test_an_account_failing_mid_job_fails_over_within_the_budget(gateway, oai, sim):
    gw = gateway([("sim-super-expired-zed", Tier.SUPER), ("sim-super-bob", Tier.SUPER)])
    client = oai(gw)
    video = client.videos.create(prompt="failover clip")
    done, _ = poll(client, video.id)
    assert done.status == "completed"
    tokens = [r.cookies.get("sso") for r in sim.log if r.path == E1]
    assert tokens[-1] == "sim-super-bob"


def test_a_job_that_cannot_finish_fails_with_the_upstreams_reason(gateway, oai, sim):
    gw = gateway(SUPER)
    client = oai(gw)
    video = client.videos.create(prompt="a cat #sim status=400")
    done, _ = poll(client, video.id)
    assert done.status == "failed" and done.error is not None and done.error.message
