"""/v1/videos end to end: the official `openai` SDK -> the gateway -> the simulator. Create returns
a queued job; the inline runner (or the scheduled worker) runs it; status reports progress;
content streams the stored mp4; failures end as `failed` with an error."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from core.catalog import Tier
from core.ports import JobStatus
from core.services.videos import owner_of
from functions.video_worker import advance
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, start_gateway

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")

KEY = "sk-video-test"
SUPER = [("sim-super-alice", Tier.SUPER)]
Start = Callable[..., Gateway]


@pytest.fixture
def gateway(sim: SimServer, tmp_path: Path) -> Iterator[Start]:
    started: list[Gateway] = []

    def start(tokens: list[tuple[str, Tier]], **env: str) -> Gateway:
        settings = {
            "GROKGATE_UPSTREAM_URL": sim.url,
            "GROKGATE_ASSETS_URL": sim.url,
            "GROKGATE_API_KEYS": KEY,
            "GROKGATE_MEDIA": str(tmp_path / "media"),
            "GROKGATE_RETRY_BUDGET": "1",
            **{f"GROKGATE_{k.upper()}": v for k, v in env.items()},
        }
        gw = start_gateway(settings, tmp_path, tokens)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture
def oai() -> Iterator[Callable[[Gateway], openai.OpenAI]]:
    clients: list[openai.OpenAI] = []

    def make(gw: Gateway) -> openai.OpenAI:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0, timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def poll(client: openai.OpenAI, video_id: str, timeout: float = 15.0) -> tuple[object, list[tuple[str, int]]]:
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + timeout
    while True:
        video = client.videos.retrieve(video_id)
        seen.append((video.status, video.progress))
        if video.status in ("completed", "failed") or time.monotonic() > deadline:
            return video, seen
        time.sleep(0.03)


def test_create_poll_download(gateway, oai, sim):
    gw = gateway(SUPER)
    client = oai(gw)
    video = client.videos.create(
        model="grok-imagine-video", prompt="a cat surfing #sim delay_ms=60", seconds="6", size="1280x720"
    )
    assert video.status == "queued" and video.progress == 0
    assert video.id.startswith("video_") and video.seconds == "6" and video.size == "1280x720"
    done, seen = poll(client, video.id)
    assert done.status == "completed" and done.progress == 100 and done.completed_at
    assert any(status == "in_progress" and 0 < progress < 100 for status, progress in seen)
    progresses = [p for _, p in seen]
    assert progresses == sorted(progresses)  # progress never goes back
    content = client.videos.download_content(video.id)
    assert content.content[4:8] == b"ftyp"
    thumb = client.videos.download_content(video.id, variant="thumbnail")
    assert thumb.content.startswith(b"\xff\xd8\xff")
    body = next(r for r in sim.log if r.path == "/rest/app-chat/conversations/new").json
    spec = body["mediaGenInput"]["textToVideo"]
    assert spec == {"prompt": "a cat surfing #sim delay_ms=60", "aspectRatio": "16:9", "duration": 6,
                    "resolutionName": "720p"}  # fmt: skip
    assert body["message"].endswith("--mode=custom")


def test_json_body_and_extensions(gateway, oai):
    gw = gateway(SUPER)
    response = httpx.post(
        gw.url + "/v1/videos",
        headers={"Authorization": f"Bearer {KEY}"},
        json={"prompt": "rain", "seconds": 10, "resolution_name": "480p", "preset": "normal"},
    )
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["model"] == "grok-imagine-video" and job["seconds"] == "10" and job["size"] == "720x1280"
    done, _ = poll(oai(gw), job["id"])
    assert done.status == "completed"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"seconds": "4"}, "seconds"),
        ({"seconds": "20"}, "seconds"),
        ({"size": "640x480"}, "size"),
        ({"model": "grok-imagine-image"}, "model"),
        ({"prompt": ""}, "prompt"),
        ({"resolution_name": "4k"}, "resolution_name"),
        ({"preset": "wild"}, "preset"),
    ],
)
def test_bad_parameters_are_400_naming_the_param(gateway, fields, param):
    gw = gateway(SUPER)
    data = {"prompt": "a cat", "model": "grok-imagine-video", **fields}
    response = httpx.post(gw.url + "/v1/videos", headers={"Authorization": f"Bearer {KEY}"}, data=data)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_image_to_video_from_an_uploaded_reference(gateway, oai, sim):
    from infra.sim.pixels import sample_png

    gw = gateway(SUPER)
    client = oai(gw)
    video = client.videos.create(
        prompt="the cat wakes up", input_reference=("cat.png", sample_png(), "image/png"), seconds="6"
    )
    done, _ = poll(client, video.id)
    assert done.status == "completed", done
    assert client.videos.download_content(video.id).content[4:8] == b"ftyp"
    upload = next(r for r in sim.log if r.path == "/rest/app-chat/upload-file").json
    assert upload["fileMimeType"] == "image/png"
    post = next(r for r in sim.log if r.path == "/rest/media/post/create").json
    assert post["mediaType"] == "MEDIA_POST_TYPE_IMAGE" and post["mediaUrl"].startswith(sim.url + "/users/")
    e1 = [r.json for r in sim.log if r.path == "/rest/app-chat/conversations/new"][-1]
    config = e1["responseMetadata"]["modelConfigOverride"]["modelMap"]["videoGenModelConfig"]
    assert e1["modelName"] == "grok-3" and e1["fileAttachments"] == [config["parentPostId"]]
    assert e1["message"].startswith(post["mediaUrl"] + "  the cat wakes up")
    assert (config["videoLength"], config["aspectRatio"]) == (6, "9:16")


def test_image_to_video_from_a_json_data_url_and_bad_references(gateway, oai):
    import base64

    from infra.sim.pixels import sample_png

    gw = gateway(SUPER)
    headers = {"Authorization": f"Bearer {KEY}"}
    data_url = "data:image/png;base64," + base64.b64encode(sample_png()).decode()
    made = httpx.post(
        gw.url + "/v1/videos",
        headers=headers,
        json={"prompt": "waves", "input_reference": {"image_url": data_url}, "seconds": 10},
    )
    assert made.status_code == 200, made.text
    assert poll(oai(gw), made.json()["id"])[0].status == "completed"
    for body, param in (
        (
            {"prompt": "x", "input_reference": {"image_url": "data:text/plain;base64,aGVsbG8="}},
            "input_reference",
        ),
        ({"prompt": "x", "input_reference": {"file_id": "0" * 32 + ".png"}}, "input_reference"),
        ({"prompt": "x", "input_reference": {"nothing": 1}}, "input_reference"),
        ({"prompt": "x", "input_reference": {"image_url": data_url}, "seconds": 12}, "seconds"),
    ):
        refused = httpx.post(gw.url + "/v1/videos", headers=headers, json=body)
        assert refused.status_code == 400, (body, refused.text)
        assert refused.json()["error"]["param"] == param


def test_unknown_id_is_404_and_content_before_completion_is_409(gateway, oai):
    gw = gateway(SUPER)
    client = oai(gw)
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve("video_" + "0" * 32)
    video = client.videos.create(prompt="slow #sim delay_ms=200")
    with pytest.raises(openai.ConflictError) as caught:
        client.videos.download_content(video.id)
    assert caught.value.body["code"] == "video_not_ready"
    assert poll(client, video.id)[0].status == "completed"


def test_moderated_video_fails_with_an_error(gateway, oai):
    gw = gateway(SUPER)
    client = oai(gw)
    video = client.videos.create(prompt="a cat #sim moderated")
    done, _ = poll(client, video.id)
    assert done.status == "failed"
    assert done.error is not None and done.error.code == "content_policy_violation"


def test_upstream_failure_on_every_account_fails_the_job(gateway, oai):
    gw = gateway([("sim-super-expired-a", Tier.SUPER), ("sim-super-blocked-b", Tier.SUPER)])
    client = oai(gw)
    video = client.videos.create(prompt="a cat")
    done, _ = poll(client, video.id)
    assert done.status == "failed" and done.error is not None
    assert done.error.code in ("account_expired", "account_blocked")


def test_worker_mode_leaves_jobs_to_the_scheduled_worker(gateway, oai):
    gw = gateway(SUPER, video_runner="worker")
    client = oai(gw)
    video = client.videos.create(prompt="a cat")
    time.sleep(0.2)
    assert client.videos.retrieve(video.id).status == "queued"
    assert gw.call(advance(gw.deps, budget=10)) == 1
    assert client.videos.retrieve(video.id).status == "completed"
    assert gw.call(advance(gw.deps, budget=10)) == 0  # nothing left: no job runs twice
    assert client.videos.download_content(video.id).content[4:8] == b"ftyp"


def test_worker_route_needs_the_cron_secret(gateway):
    from functions.video_worker import app as worker_app

    gw = gateway(SUPER, video_runner="worker", admin_key="cron-s3cret")
    transport = httpx.ASGITransport(app=worker_app)
    worker_app.state.deps = gw.deps

    async def call(headers: dict[str, str]) -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
            return await http.post("/cron/video-worker", headers=headers)

    assert gw.call(call({})).status_code == 403
    assert gw.call(call({"Authorization": "Bearer wrong"})).status_code == 403
    ok = gw.call(call({"Authorization": "Bearer cron-s3cret"}))
    assert ok.status_code == 200 and ok.json() == {"ran": 0}


def test_a_job_abandoned_by_a_dead_runner_is_taken_up_when_polled(gateway, oai):
    gw = gateway(SUPER, job_claim_seconds="0.3")
    store = gw.deps.job_store
    client = oai(gw)
    # A job a crashed process claimed and never finished: in progress, claim about to expire.
    from core.ports import Job

    now = time.time()
    job = Job("video_" + "a" * 32, "video", JobStatus.QUEUED, {"model": "grok-imagine-video", "prompt": "x",
              "seconds": 6, "size": "720x1280", "resolution": "720p", "preset": "custom"}, now - 5, now - 5,
              owner=owner_of(KEY))  # fmt: skip
    gw.call(store.create(job))
    assert gw.call(store.claim(job.id, now=now, ttl=0.3, max_attempts=2)) is not None
    assert client.videos.retrieve(job.id).status == "in_progress"
    time.sleep(0.4)
    done, _ = poll(client, job.id)
    assert done.status == "completed"
    final = gw.call(store.get(job.id))
    assert final.attempts == 2
