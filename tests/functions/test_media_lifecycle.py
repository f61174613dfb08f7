"""Media lifecycle: files expire after GROKGATE_MEDIA_RETENTION (the scheduled sweep deletes them
from the folder and from a bucket without a lifecycle rule), an optional cap evicts the oldest
first, and a link to expired media answers 410 in the OpenAI envelope."""

from __future__ import annotations

import os
import time
from pathlib import Path

import boto3
import httpx
import openai
import pytest

from core.services.media_lifecycle import sweep
from core.settings import Settings
from infra.media.local import LocalMediaStore
from infra.media.s3 import S3MediaStore
from tests.functions import test_videos_e2e as videos
from tests.functions.test_videos_e2e import KEY, SUPER

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
gateway, oai = videos.gateway, videos.oai
DAY = 86400.0


async def test_the_sweep_expires_old_files_and_the_cap_evicts_the_oldest_first(tmp_path: Path):
    store = LocalMediaStore(tmp_path, b"k" * 32)
    now = time.time()
    ids = []
    for age_days, size in ((10, 100), (3, 300), (2, 200), (1, 100)):
        media_id = await store.put(b"x" * size, "image/png")
        os.utime(tmp_path / media_id, (now - age_days * DAY, now - age_days * DAY))
        ids.append(media_id)
    report = await sweep(store, now=now, retention=7 * DAY, max_bytes=350)
    assert (report.scanned, report.expired, report.evicted) == (4, 1, 1)
    assert report.kept_bytes == 300
    left = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert left == sorted(ids[2:])  # the 10-day file expired, then the oldest (3 days) was evicted
    again = await sweep(store, now=now, retention=7 * DAY, max_bytes=350)
    assert (again.expired, again.evicted) == (0, 0)


async def test_a_bucket_with_a_lifecycle_rule_is_left_to_s3_one_without_is_swept(moto_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", region_name="us-east-1")
    ruled, bare = f"ruled-{os.getpid()}-{time.time_ns()}", f"bare-{os.getpid()}-{time.time_ns()}"
    for bucket in (ruled, bare):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_lifecycle_configuration(
        Bucket=ruled,
        LifecycleConfiguration={
            "Rules": [{"ID": "expire-media", "Status": "Enabled", "Filter": {"Prefix": "media/"},
                       "Expiration": {"Days": 7}}]
        },
    )  # fmt: skip
    with_rule = S3MediaStore(ruled, "media/", region="us-east-1")
    without = S3MediaStore(bare, "media/", region="us-east-1")
    assert await with_rule.expires_by_itself(7 * DAY)
    assert not await with_rule.expires_by_itself(1 * DAY)  # the rule is slower than the setting
    assert not await without.expires_by_itself(7 * DAY)
    kept = await without.put(b"\x89PNG" + b"0" * 50, "image/png")
    report = await sweep(without, now=time.time() + 8 * DAY, retention=7 * DAY, max_bytes=0)
    assert report.expired == 1 and await without.open(kept) is None


def test_expired_media_answer_410_in_the_openai_envelope_and_the_cron_sweeps(sim, oai, tmp_path):
    from tests.fixtures.gateway import start_gateway

    env = {
        "GROKGATE_UPSTREAM_URL": sim.url,
        "GROKGATE_ASSETS_URL": sim.url,
        "GROKGATE_API_KEYS": KEY,
        "GROKGATE_MEDIA": str(tmp_path / "media"),
        "GROKGATE_MEDIA_RETENTION": "2",
        "CRON_SECRET": "cron-s3cret",
    }
    gw = start_gateway(env, tmp_path, SUPER)
    try:
        _expire_and_sweep(gw, oai(gw))
    finally:
        gw.stop()


def _expire_and_sweep(gw, client) -> None:
    image = client.images.generate(model="grok-imagine-image", prompt="a lighthouse", response_format="url")
    link = image.data[0].url
    assert httpx.get(link).status_code == 200
    video = client.videos.create(prompt="tide")
    done, _ = videos.poll(client, video.id)
    assert done.status == "completed" and done.expires_at - done.completed_at == 2
    time.sleep(2.1)

    expired = httpx.get(link)
    assert expired.status_code == 410
    assert expired.json()["error"]["code"] == "media_expired" and expired.json()["error"]["type"]
    with pytest.raises(openai.APIStatusError) as caught:
        client.videos.download_content(video.id)
    assert caught.value.status_code == 410 and caught.value.body["code"] == "media_expired"

    swept = httpx.post(gw.url + "/api/cron/media", headers={"Authorization": "Bearer cron-s3cret"})
    assert swept.status_code == 200, swept.text
    assert swept.json()["expired"] >= 3  # the image, the video and its thumbnail
    media = Path(gw.deps.settings.media)
    assert not [p for p in media.iterdir() if not p.name.startswith(".")]
    assert httpx.get(link).status_code == 410  # still 410 once the file is gone
    assert httpx.post(gw.url + "/api/cron/media").status_code == 401


def test_retention_zero_keeps_media_forever_and_the_default_matches_the_bucket_rule():
    from core.services.media_lifecycle import expired

    assert not expired(1.0, now=time.time(), retention=0)
    assert expired(1.0, now=time.time(), retention=7 * DAY)
    assert not expired(0.0, now=time.time(), retention=7 * DAY)  # a store that cannot tell
    assert Settings.from_env({}).media_retention == 7 * DAY
