"""Images and videos through /v1/chat/completions with the official SDK: progress streams as
reasoning deltas, the answer ends with links that download (never a raw upstream asset URL)."""

from __future__ import annotations

import base64
import re

import httpx
import openai
import pytest

from tests.functions import test_videos_e2e as videos
from tests.functions.test_videos_e2e import SUPER

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
gateway, oai = videos.gateway, videos.oai
LINK = re.compile(r"\]\((https?://[^)\s]+)\)")


def _stream(client: openai.OpenAI, **kwargs) -> tuple[list[str], str]:
    reasoning, content = [], ""
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        delta = chunk.choices[0].delta
        extra = delta.model_extra or {}
        if extra.get("reasoning_content"):
            reasoning.append(extra["reasoning_content"])
        content += delta.content or ""
    return reasoning, content


def test_an_image_through_chat_streams_progress_and_ends_with_links_that_download(gateway, oai, sim):
    gw = gateway(SUPER)
    client = oai(gw)
    reasoning, content = _stream(
        client,
        model="grok-imagine-image",
        messages=[{"role": "user", "content": "a red bicycle"}],
        extra_body={"image_config": {"n": 2, "size": "1024x1024"}},
    )
    assert reasoning and "Generating 2 image(s)" in reasoning[0]
    shown = [int(r.split()[-1].rstrip("%\n")) for r in reasoning if r.rstrip().endswith("%")]
    assert shown and shown == sorted(shown) and len(set(shown)) == len(shown)  # the round's progress, rising
    links = LINK.findall(content)
    assert len(links) == 2 and sim.url + "/users/" not in content  # never the account-bound asset
    for link in links:
        got = httpx.get(link)  # no API key: the signed link is enough
        assert got.status_code == 200 and got.headers["content-type"].startswith("image/")
        assert got.content[:3] == b"\xff\xd8\xff" or got.content[:4] == b"\x89PNG"


def test_an_image_through_chat_as_base64_without_streaming(gateway, oai):
    gw = gateway(SUPER)
    reply = oai(gw).chat.completions.create(
        model="grok-imagine-image",
        messages=[{"role": "user", "content": [{"type": "text", "text": "a blue kite"}]}],
        extra_body={"image_config": {"response_format": "b64_json"}},
    )
    content = reply.choices[0].message.content or ""
    data = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", content)
    assert len(data) == 1 and len(base64.b64decode(data[0])) > 100
    assert (reply.choices[0].message.model_extra or {}).get("reasoning_content")


def test_a_bad_image_config_is_a_400_naming_the_field(gateway, oai):
    gw = gateway(SUPER)
    with pytest.raises(openai.BadRequestError) as caught:
        oai(gw).chat.completions.create(
            model="grok-imagine-image",
            messages=[{"role": "user", "content": "x"}],
            extra_body={"image_config": {"n": "two"}},
        )
    assert "image_config" in str(caught.value.body.get("param") or caught.value.body.get("message"))


def test_a_video_through_chat_is_a_job_that_streams_progress_and_ends_with_its_link(gateway, oai, sim):
    gw = gateway(SUPER)
    client = oai(gw)
    reasoning, content = _stream(
        client,
        model="grok-imagine-video",
        messages=[{"role": "user", "content": "waves at night #sim delay_ms=40"}],
        extra_body={"video_config": {"seconds": 6, "size": "1280x720", "resolution_name": "480p"}},
    )
    assert any("queued" in r for r in reasoning) and any("%" in r for r in reasoning)
    (link,) = LINK.findall(content)
    assert content.startswith("[video](") and sim.url not in content
    got = httpx.get(link)
    assert got.status_code == 200 and got.content[4:8] == b"ftyp"
    job_id = next(r for r in reasoning if "queued" in r).split()[2]
    assert client.videos.retrieve(job_id).status == "completed"  # the job is one of the caller's videos


def test_a_video_that_outlasts_the_wait_ends_with_its_status_link(gateway, oai):
    gw = gateway(SUPER, chat_video_wait="0", video_format="html")
    client = oai(gw)
    reply = client.chat.completions.create(
        model="grok-imagine-video", messages=[{"role": "user", "content": "slow clouds #sim delay_ms=50"}]
    )
    content = reply.choices[0].message.content or ""
    job_id = re.search(r"`(video_[0-9a-f]+)`", content).group(1)
    assert f"/v1/videos/{job_id}" in content
    done, _ = videos.poll(client, job_id)
    assert done.status == "completed"


def test_a_video_through_chat_animates_the_image_in_the_conversation(gateway, oai, sim):
    import base64 as b64

    from infra.sim.pixels import sample_png

    gw = gateway(SUPER)
    url = "data:image/png;base64," + b64.b64encode(sample_png()).decode()
    reply = oai(gw).chat.completions.create(
        model="grok-imagine-video",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "make it move"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        ],
    )
    assert (reply.choices[0].message.content or "").startswith("[video](")
    assert any(r.path == "/rest/media/post/create" for r in sim.log)


def test_a_video_that_fails_ends_the_stream_with_an_error_event(gateway, oai):
    gw = gateway(SUPER)
    with pytest.raises(openai.APIError) as caught:
        _stream(
            oai(gw), model="grok-imagine-video", messages=[{"role": "user", "content": "x #sim moderated"}]
        )
    assert "moderation" in str(caught.value)
