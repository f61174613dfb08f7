"""Imagine frames and media bodies (pure): slots, previews vs finals, moderation, errors."""

from __future__ import annotations

import base64

import pytest

from core.catalog import get_model
from core.errors import InvalidRequest
from core.protocol.classify import Kind, UpstreamFailure
from core.protocol.media import ImagineDecoder, imagine_request, is_video_url, video_body
from core.services.image_requests import check_request
from core.services.videos import check_request as check_video

FINAL = base64.b64encode(b"\xff\xd8\xffFINAL").decode()
PREVIEW = base64.b64encode(b"\xff\xd8\xffPREVIEW").decode()


def _round(decoder: ImagineDecoder, slot: str, order: int, *, moderated: bool = False) -> None:
    decoder.feed({"type": "json", "current_status": "start_stage", "image_id": slot, "order": order})
    decoder.feed({"type": "image", "image_id": slot, "order": order, "blob": PREVIEW, "percentage_complete": 40,
                  "url": f"users/u/generated/images/{slot}.jpg"})  # fmt: skip
    if not moderated:
        decoder.feed({"type": "image", "image_id": slot, "order": order, "blob": "data:image/jpeg;base64," + FINAL,
                      "percentage_complete": 100, "url": f"users/u/generated/images/{slot}.jpg"})  # fmt: skip
    decoder.feed({"type": "json", "current_status": "completed", "image_id": slot, "order": order,
                  "moderated": moderated})  # fmt: skip


def test_decoder_keeps_final_pixels_and_drops_moderated_slots():
    decoder = ImagineDecoder(3, "https://assets.example")
    _round(decoder, "b", 1)
    assert not decoder.done
    _round(decoder, "a", 0, moderated=True)
    _round(decoder, "c", 2)
    assert decoder.done and decoder.moderated() == 1
    finals = decoder.finals()
    assert [s.id for s in finals] == ["b", "c"]
    assert finals[0].data == b"\xff\xd8\xffFINAL"
    assert finals[0].url == "https://assets.example/users/u/generated/images/b.jpg"


def test_slot_id_falls_back_to_the_url_stem():
    decoder = ImagineDecoder(1)
    decoder.feed({"type": "image", "url": "https://assets.grok.com/x/images/abc.jpg", "blob": FINAL})
    decoder.feed(
        {"type": "json", "current_status": "completed", "url": "https://assets.grok.com/x/images/abc.jpg"}
    )
    assert decoder.done and decoder.finals()[0].id == "abc"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("rate_limit_exceeded", Kind.RATE_LIMITED),
        ("anti_bot", Kind.ANTI_BOT),
        ("invalid_request", Kind.REJECTED),
    ],
)
def test_error_frames_are_classified(code, kind):
    with pytest.raises(UpstreamFailure) as caught:
        ImagineDecoder(1).feed({"type": "error", "err_code": code, "err_msg": "no"})
    assert caught.value.kind is kind


def test_request_and_video_bodies():
    request = imagine_request("a cat", aspect="16:9", pro=True, count=3, request_id="r1", timestamp=5)
    content = request["item"]["content"][0]
    assert content["text"] == "a cat" and content["properties"]["num_generations"] == 3
    assert content["properties"]["enable_pro"] is True and content["properties"]["aspect_ratio"] == "16:9"
    body = video_body("surf", aspect="9:16", seconds=10, resolution="480p", preset="fun")
    assert body["message"] == "surf --mode=extremely-crazy"
    assert body["mediaGenInput"]["textToVideo"] == {
        "prompt": "surf", "aspectRatio": "9:16", "duration": 10, "resolutionName": "480p"
    }  # fmt: skip
    assert is_video_url("https://a/users/u/generated/v/generated_video.mp4?x=1")
    assert not is_video_url("https://a/users/u/generated/v/preview.jpg")


def test_image_request_validation_uses_the_catalog():
    image = get_model("grok-imagine-image")
    ok = check_request(image, prompt="x", n="3", size="1792x1024", response_format=None,
                       default_format="markdown", base_url="http://gw")  # fmt: skip
    assert (ok.n, ok.aspect, ok.response_format) == (3, "3:2", "url")
    lite = get_model("grok-imagine-image-lite")
    assert check_request(lite, prompt="x", n=4, size="auto", response_format="b64_json",
                         default_format="url", base_url="").aspect is None  # fmt: skip
    with pytest.raises(InvalidRequest) as caught:
        check_request(
            lite, prompt="x", n=True, size=None, response_format=None, default_format="url", base_url=""
        )
    assert caught.value.param == "n"


def test_video_request_validation():
    ok = check_video(model=None, prompt=" surf ", seconds="12", size=None)
    assert (ok.model.id, ok.prompt, ok.seconds, ok.size, ok.resolution, ok.preset) == (
        "grok-imagine-video", "surf", 12, "720x1280", "720p", "custom"
    )  # fmt: skip
    with pytest.raises(InvalidRequest) as caught:
        check_video(model="grok-imagine-video", prompt="x", seconds=16, size=None)
    assert caught.value.param == "seconds"


def test_find_video_asset_by_id_or_newest_since():
    from core.protocol.media import find_video_asset

    listing = {
        "assets": [
            {"assetId": "img", "mimeType": "image/jpeg", "key": "users/u/generated/img/image.jpg",
             "createTime": "2026-01-01T00:00:10Z"},
            {"assetId": "v1", "mimeType": "video/mp4", "key": "users/u/generated/v1/generated_video.mp4",
             "createTime": "2026-01-01T00:00:05Z"},
            {"assetId": "v2", "mimeType": "video/mp4", "key": "users/u/generated/v2/generated_video.mp4",
             "createTime": "2026-01-01T00:00:20Z"},
        ]
    }  # fmt: skip
    base = "https://assets.test/"
    assert find_video_asset(listing, video_id="v1", since=0, assets_url=base) == (
        base + "users/u/generated/v1/generated_video.mp4",
        base + "users/u/generated/v1/preview_image.jpg",
    )
    assert find_video_asset(listing, video_id="nope", since=0, assets_url=base) is None
    newest = find_video_asset(listing, video_id="", since=1767225600.0, assets_url=base)
    assert newest is not None and "/v2/" in newest[0]
    assert find_video_asset(listing, video_id="", since=1767225700.0, assets_url=base) is None
    assert find_video_asset({"error": 1}, video_id="v1", since=0, assets_url=base) is None
