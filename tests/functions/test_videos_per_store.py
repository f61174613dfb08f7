"""Video jobs with each store chosen by GROKGATE_STORE (the job store follows it, nothing more to
set): the official SDK creates a video, polls it to completed and downloads it."""

from __future__ import annotations

import time
import uuid

import openai
import pytest

from core.accounts import NewAccount
from core.catalog import Tier
from tests.fixtures.gateway import start_gateway
from tests.functions.test_chat_per_store import store_env

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


@pytest.mark.parametrize("kind", ["sqlite", "redis-tcp", "upstash-rest", "dynamodb"])
def test_video_through_each_store(kind, sim, store_servers, tmp_path, monkeypatch):
    env = {
        **store_env(kind, store_servers, tmp_path, monkeypatch),
        "GROKGATE_UPSTREAM_URL": sim.url,
        "GROKGATE_ASSETS_URL": sim.url,
        "GROKGATE_API_KEYS": "k",
        "GROKGATE_MEDIA": str(tmp_path / "media"),
    }
    gw = start_gateway(env, tmp_path)
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0, timeout=30)
    video = None
    try:
        gw.call(
            gw.deps.store.add(
                [NewAccount(f"sim-super-{kind}-{uuid.uuid4().hex[:6]}", Tier.SUPER)], time.time()
            )
        )
        video = client.videos.create(prompt="a fox in snow #sim delay_ms=20", seconds="6")
        assert video.status == "queued"
        deadline = time.monotonic() + 30
        while video.status not in ("completed", "failed") and time.monotonic() < deadline:
            time.sleep(0.05)
            video = client.videos.retrieve(video.id)
        assert video.status == "completed", video
        assert client.videos.download_content(video.id).content[4:8] == b"ftyp"
        store = gw.deps.job_store
        assert (
            type(store).__module__
            == {
                "sqlite": "infra.jobs.sqlite",
                "redis-tcp": "infra.jobs.redis",
                "upstash-rest": "infra.jobs.redis",
                "dynamodb": "infra.jobs.dynamodb",
            }[kind]
        )
    finally:
        client.close()
        # The Redis-backed stores share a server with other tests: leave no account or job behind.
        for account in gw.call(gw.deps.store.list()).items:
            gw.call(gw.deps.store.remove(account.id))
        if video is not None:
            gw.call(gw.deps.job_store.delete(video.id))
        gw.stop()
