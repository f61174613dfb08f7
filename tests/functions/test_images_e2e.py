"""/v1/images end to end: the official `openai` SDK -> the gateway (uvicorn, SQLite store, local
media folder) -> curl_cffi / websockets -> the simulator, all on loopback."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import openai
import pytest

from core.accounts import AccountStatus, Quota
from core.catalog import Tier
from infra.sim import pixels
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, start_gateway

KEY = "sk-media-test"
JPEG = b"\xff\xd8\xff"
PNG = pixels.sample_png(8, 8)

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


SUPER = [("sim-super-alice", Tier.SUPER)]


def _imagine_requests(sim: SimServer) -> list[dict]:
    out = []
    for record in sim.log:
        for message in getattr(record, "ws_messages", []):
            content = message["item"]["content"][0]
            if content.get("type") == "input_text":
                out.append(content)
    return out


def test_generation_returns_urls_that_download_real_images_without_the_key(gateway, oai, sim):
    gw = gateway(SUPER)
    result = oai(gw).images.generate(model="grok-imagine-image", prompt="a lighthouse", n=2, size="1280x720")
    assert len(result.data) == 2 and result.created > 0
    urls = [item.url for item in result.data]
    assert all(url and url.startswith(gw.url + "/v1/files/") for url in urls)
    assert sim.url not in " ".join(urls)  # the upstream asset URL is not public
    for url in urls:
        response = httpx.get(url)  # no Authorization header: the signature is the credential
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        assert response.content.startswith(JPEG)
    sent = _imagine_requests(sim)
    assert len(sent) == 1  # one round, one quota unit, for n=2
    assert sent[0]["properties"]["num_generations"] == 2
    assert sent[0]["properties"]["aspect_ratio"] == "16:9"
    assert sent[0]["properties"]["enable_pro"] is False


def test_pro_and_b64_json(gateway, oai, sim):
    gw = gateway(SUPER)
    result = oai(gw).images.generate(
        model="grok-imagine-image-pro", prompt="a fox", n=1, response_format="b64_json"
    )
    assert result.data[0].url is None
    assert base64.b64decode(result.data[0].b64_json).startswith(JPEG)
    assert _imagine_requests(sim)[0]["properties"]["enable_pro"] is True


def test_lite_draws_through_chat_two_images_per_request(gateway, oai, sim):
    gw = gateway([("sim-basic-bob", Tier.BASIC)])
    result = oai(gw).images.generate(model="grok-imagine-image-lite", prompt="a red apple", n=3)
    assert len(result.data) == 3
    assert all(httpx.get(item.url).content.startswith(JPEG) for item in result.data)
    chats = sim.log.chat_turns()
    assert len(chats) == 2  # ceil(3 / 2) upstream requests, one quota unit each
    assert all(turn.message == "Drawing: a red apple" and turn.mode == "fast" for turn in chats)


def test_edit_with_an_uploaded_png(gateway, oai, sim):
    gw = gateway(SUPER)
    result = oai(gw).images.edit(
        model="grok-imagine-image-edit", image=("in.png", PNG, "image/png"), prompt="make it snowy"
    )
    assert len(result.data) == 1
    assert httpx.get(result.data[0].url).content.startswith(JPEG)
    uploads = [r for r in sim.log if r.path == "/http/upload-file-v2/direct"]
    assert len(uploads) == 1
    edit = next(r for r in sim.log if r.path == "/rest/app-chat/conversations/new")
    assert edit.json["mediaGenInput"]["imageToImage"]["prompt"] == "make it snowy"


def test_edit_accepts_several_images_as_image_array(gateway, oai):
    gw = gateway(SUPER)
    result = oai(gw).images.edit(
        model="grok-imagine-image-edit",
        image=[("a.png", PNG, "image/png"), ("b.png", PNG, "image/png")],
        prompt="merge",
        n=2,
        response_format="b64_json",
    )
    assert len(result.data) == 2


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"model": "grok-imagine-image", "n": 11}, "n"),
        ({"model": "grok-imagine-image", "size": "999x999"}, "size"),
        ({"model": "grok-imagine-image-lite", "size": "1024x1024"}, "size"),
        ({"model": "grok-imagine-image-lite", "n": 5}, "n"),
        ({"model": "grok-imagine-image", "response_format": "gif"}, "response_format"),
        ({"model": "grok-4.20-0309"}, "model"),
        ({"model": "grok-imagine-image", "prompt": "  "}, "prompt"),
    ],
)
def test_bad_parameters_are_400_naming_the_param(gateway, oai, sim, kwargs, param):
    gw = gateway(SUPER)
    kwargs = {"prompt": "a cat", **kwargs}
    with pytest.raises(openai.BadRequestError) as caught:
        oai(gw).images.generate(**kwargs)
    assert caught.value.body["param"] == param
    assert not _imagine_requests(sim)  # nothing reached the upstream


def test_edit_refusals_name_the_param(gateway, oai):
    gw = gateway(SUPER)
    client = oai(gw)
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(image=("a.png", PNG, "image/png"), prompt="x", mask=("m.png", PNG, "image/png"))
    assert caught.value.body["param"] == "mask"
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(image=("a.png", PNG, "image/png"), prompt="x", size="1792x1024")
    assert caught.value.body["param"] == "size"
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(image=("a.txt", b"not an image", "image/png"), prompt="x")
    assert caught.value.body["param"] == "image"


def test_moderated_images_are_not_delivered(gateway, oai):
    gw = gateway(SUPER)
    client = oai(gw)
    # The simulator moderates the first slot: of two, one is delivered; of one, none is.
    result = client.images.generate(model="grok-imagine-image", prompt="a cat #sim moderated", n=2)
    assert len(result.data) == 1
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="grok-imagine-image", prompt="a cat #sim moderated", n=1)
    assert caught.value.body["code"] == "content_policy_violation"


def test_expired_account_fails_over_and_quota_is_spent_once(gateway, oai, sim):
    gw = gateway([("sim-super-expired-x", Tier.SUPER), ("sim-super-alice", Tier.SUPER)])
    accounts = {a.token: a for a in gw.call(gw.deps.store.list(limit=10)).items}
    good = accounts["sim-super-alice"]
    # Less quota left on the good account: the expired one is leased first.
    gw.call(gw.deps.store.set_quota(good.id, "auto", Quota(10, 50, 7200, good.quotas["auto"].reset_at)))
    result = oai(gw).images.generate(model="grok-imagine-image", prompt="a boat", n=1)
    assert len(result.data) == 1
    after = {a.token: a for a in gw.call(gw.deps.store.list(limit=10)).items}
    assert after["sim-super-expired-x"].status is AccountStatus.EXPIRED
    assert after["sim-super-alice"].quotas["auto"].remaining == 9
    assert after["sim-super-alice"].in_flight == 0
    remaining, total, _, _ = sim.accounts.quota(sim.account("sim-super-alice"), "auto")
    assert total - remaining == 1


def test_no_account_for_the_tier_is_a_clear_error(gateway, oai):
    gw = gateway([("sim-basic-bob", Tier.BASIC)])
    with pytest.raises(openai.APIStatusError) as caught:
        oai(gw).images.generate(model="grok-imagine-image", prompt="x")
    assert caught.value.status_code == 503
    assert caught.value.body["code"] == "no_account_available"


def test_tampered_expired_and_unsigned_links_are_refused(gateway, oai):
    gw = gateway(SUPER)
    url = oai(gw).images.generate(model="grok-imagine-image", prompt="x").data[0].url
    assert url is not None
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    base = f"{gw.url}{parts.path}"
    sig, exp = query["sig"][0], query["exp"][0]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    assert httpx.get(f"{base}?exp={exp}&sig={flipped}").status_code == 403
    assert httpx.get(f"{base}?exp={int(exp) + 60}&sig={sig}").status_code == 403
    assert httpx.get(f"{base}?sig={sig}").status_code == 403
    other = base.replace(parts.path.split("/")[3], "0" * 32 + ".jpg")
    assert httpx.get(f"{other}?exp={exp}&sig={sig}").status_code == 403
    assert httpx.get(base).status_code == 401  # no signature: the ordinary API key rule
    authed = httpx.get(base, headers={"Authorization": f"Bearer {KEY}"})
    assert authed.status_code == 200 and authed.content.startswith(JPEG)


def test_public_url_is_the_base_of_media_links(gateway, oai):
    gw = gateway(SUPER, public_url="https://media.example.test")
    url = oai(gw).images.generate(model="grok-imagine-image", prompt="x").data[0].url
    assert url is not None and url.startswith("https://media.example.test/v1/files/")
