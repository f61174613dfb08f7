"""Uploads (E5, E6), media posts (E13), image edit and video through E1, assets (E7, E8, E9)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from infra.sim import pixels
from infra.sim.server import SimServer
from tests.sim.helpers import CHAT, frames, headers, responses

TOKEN = "sim-super-media"


@pytest.fixture
def client(sim: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=10) as c:
        yield c


def upload_json(client: httpx.Client, data: bytes, mime: str = "image/png", token: str = TOKEN) -> dict:
    body = {"fileName": "file.png", "fileMimeType": mime, "content": base64.b64encode(data).decode()}
    r = client.post("/rest/app-chat/upload-file", json=body, headers=headers(token))
    assert r.status_code == 200
    return r.json()


def upload_multipart(
    client: httpx.Client, data: bytes, source: str | None = "IMAGINE_SELF_UPLOAD_FILE_SOURCE"
) -> dict:
    form = {"file_source": source} if source else {}
    r = client.post(
        "/http/upload-file-v2/direct",
        files={"file": ("cat.png", data, "image/png")},
        data=form,
        headers=headers(TOKEN, False),
    )
    assert r.status_code == 200
    return r.json()


def test_json_upload_round_trips_through_the_assets_host(client: httpx.Client, sim: SimServer) -> None:
    png = pixels.sample_png()
    up = upload_json(client, png)
    uid = sim.account(TOKEN).user_id
    assert up["fileUri"] == f"users/{uid}/{up['fileMetadataId']}/content"
    got = client.get("/" + up["fileUri"], headers=headers(TOKEN, False))
    assert got.status_code == 200 and got.content == png and got.headers["content-type"] == "image/png"


def test_upload_validation(client: httpx.Client) -> None:
    h = headers(TOKEN)
    assert client.post("/rest/app-chat/upload-file", json={"fileName": "a"}, headers=h).status_code == 400
    bad = {"fileName": "a.png", "fileMimeType": "image/png", "content": "data:image/png;base64,AAAA"}
    assert client.post("/rest/app-chat/upload-file", json=bad, headers=h).status_code == 400
    bad["content"] = "***"
    assert client.post("/rest/app-chat/upload-file", json=bad, headers=h).status_code == 400
    assert (
        client.post(
            "/http/upload-file-v2/direct", data={"x": "1"}, files={"other": ("a", b"1")}, headers=h
        ).status_code
        == 400
    )


def test_multipart_upload_keeps_binary_bytes_exactly(client: httpx.Client) -> None:
    data = bytes(range(256)) * 4 + b"\r\n--tricky\r\n"
    up = upload_multipart(client, data)
    meta = up["fileMetadata"]
    assert up["uploadId"] and meta["fileSource"] == "IMAGINE_SELF_UPLOAD_FILE_SOURCE"
    assert client.get("/" + meta["fileUri"], headers=headers(TOKEN, False)).content == data


def test_downloads_demand_the_owners_session_cookie(client: httpx.Client) -> None:
    up = upload_json(client, pixels.sample_png())
    path = "/" + up["fileUri"]
    assert client.get(path).status_code == 403
    assert client.get(path, headers=headers("sim-super-someone-else", False)).status_code == 403
    assert client.get(path, headers=headers(TOKEN, False)).status_code == 200
    assert client.get(path.replace("content", "nothing"), headers=headers(TOKEN, False)).status_code == 404


def test_asset_list_and_delete(client: httpx.Client) -> None:
    ids = [upload_json(client, pixels.sample_png())["fileMetadataId"] for _ in range(3)]
    page = client.get("/rest/assets", params={"pageSize": 2}, headers=headers(TOKEN)).json()
    assert len(page["assets"]) == 2 and page["nextPageToken"]
    rest = client.get(
        "/rest/assets", params={"pageSize": 2, "pageToken": page["nextPageToken"]}, headers=headers(TOKEN)
    ).json()
    assert {a["assetId"] for a in page["assets"] + rest["assets"]} == set(ids) and rest["nextPageToken"] == ""
    assert client.delete(f"/rest/assets-metadata/{ids[0]}", headers=headers(TOKEN)).status_code == 200
    assert client.delete(f"/rest/assets-metadata/{ids[0]}", headers=headers(TOKEN)).status_code == 404
    assert len(client.get("/rest/assets", headers=headers(TOKEN)).json()["assets"]) == 2


def media_post(client: httpx.Client, **body: str) -> str:
    r = client.post("/rest/media/post/create", json=body, headers=headers(TOKEN))
    assert r.status_code == 200
    return r.json()["post"]["id"]


def test_media_post_validation(client: httpx.Client) -> None:
    assert (
        client.post("/rest/media/post/create", json={"prompt": "x"}, headers=headers(TOKEN)).status_code
        == 400
    )
    assert (
        client.post(
            "/rest/media/post/create", json={"mediaType": "MEDIA_POST_TYPE_VIDEO"}, headers=headers(TOKEN)
        ).status_code
        == 400
    )


def edit_finals(text: str) -> list[dict]:
    gens = [
        r["streamingImageGenerationResponse"]
        for r in responses(frames(text))
        if "streamingImageGenerationResponse" in r
    ]
    assert [g["progress"] for g in gens if g["imageIndex"] == 0] == [25, 60, 100]
    return [g for g in gens if g["progress"] == 100 and not g["moderated"]]


def test_image_edit_v2_body(client: httpx.Client, sim: SimServer) -> None:
    up = upload_json(client, pixels.sample_png())
    parent = media_post(client, mediaType="MEDIA_POST_TYPE_IMAGE", prompt="make it snowy")
    config = {"imageReferences": [f"{sim.assets_url}{up['fileUri']}"], "parentPostId": parent}
    body = {
        "temporary": True,
        "modelName": "imagine-image-edit",
        "message": "make it snowy",
        "imageGenerationCount": 2,
        "toolOverrides": {"imageGen": True},
        "responseMetadata": {
            "modelConfigOverride": {"modelMap": {"imageEditModel": "imagine", "imageEditModelConfig": config}}
        },
    }
    r = client.post(CHAT, json=body, headers=headers(TOKEN))
    assert r.status_code == 200
    finals = edit_finals(r.text)
    assert len(finals) == 2 and all(f["assetId"] for f in finals)
    final = responses(frames(r.text))[-1]["modelResponse"]
    assert final["generatedImageUrls"] == [f["imageUrl"] for f in finals]
    image = client.get("/" + finals[0]["imageUrl"], headers=headers(TOKEN, False))
    assert image.headers["content-type"] == "image/jpeg" and image.content.startswith(b"\xff\xd8")
    config["parentPostId"] = "nope"
    assert client.post(CHAT, json=body, headers=headers(TOKEN)).status_code == 400


def test_image_edit_v3_body(client: httpx.Client) -> None:
    file_id = upload_multipart(client, pixels.sample_png())["fileMetadata"]["fileMetadataId"]
    body = {
        "modelName": "imagine-image-edit",
        "message": "make it snowy #sim moderated",
        "enableImageStreaming": True,
        "mediaGenInput": {
            "imageToImage": {"prompt": "make it snowy", "inputAssets": [file_id], "aspectRatio": "1:1"}
        },
    }
    r = client.post(CHAT, json=body, headers=headers(TOKEN))
    assert r.status_code == 200 and edit_finals(r.text) == []  # the one image was moderated
    body["message"] = "make it snowy"
    assert len(edit_finals(client.post(CHAT, json=body, headers=headers(TOKEN)).text)) == 1
    body["mediaGenInput"]["imageToImage"]["inputAssets"] = ["unknown"]
    assert client.post(CHAT, json=body, headers=headers(TOKEN)).status_code == 400


def video_frames(text: str) -> tuple[list[dict], list[dict]]:
    lines = responses(frames(text))
    return [
        r["streamingVideoGenerationResponse"] for r in lines if "streamingVideoGenerationResponse" in r
    ], lines


def test_video_v2_body(client: httpx.Client) -> None:
    parent = media_post(client, mediaType="MEDIA_POST_TYPE_VIDEO", prompt="a cat surfing")
    config = {"parentPostId": parent, "aspectRatio": "9:16", "videoLength": 6, "resolutionName": "720p"}
    body = {
        "temporary": True,
        "modelName": "grok-3",
        "message": "a cat surfing --mode=custom",
        "toolOverrides": {"videoGen": True},
        "responseMetadata": {
            "experiments": [],
            "modelConfigOverride": {"modelMap": {"videoGenModelConfig": config}},
        },
    }
    r = client.post(CHAT, json=body, headers=headers(TOKEN))
    video, lines = video_frames(r.text)
    assert [v["progress"] for v in video] == [1, 20, 45, 70, 95, 100]
    final = video[-1]
    assert final["videoUrl"].endswith("/generated_video.mp4") and final["videoUrl"].startswith("users/")
    assert final["thumbnailImageUrl"].endswith("preview_image.jpg") and final["moderated"] is False
    assert lines[-3]["isSoftStop"] is True
    mp4 = client.get("/" + final["videoUrl"], headers=headers(TOKEN, False))
    assert mp4.headers["content-type"] == "video/mp4" and mp4.content[4:8] == b"ftyp"
    config["parentPostId"] = "missing"
    assert client.post(CHAT, json=body, headers=headers(TOKEN)).status_code == 400


def test_video_v3_body_and_its_quota(client: httpx.Client, sim: SimServer) -> None:
    body = {
        "modelName": "imagine-video-gen",
        "message": "a cat surfing --mode=custom",
        "mediaGenInput": {
            "textToVideo": {
                "prompt": "a cat surfing",
                "aspectRatio": "16:9",
                "duration": 6,
                "resolutionName": "720p",
            }
        },
        "kind": "CONVERSATION_KIND_IMAGINE",
    }
    sim.accounts.configure("sim-basic-v", window_seconds=100)
    for _ in range(2):
        video, _ = video_frames(client.post(CHAT, json=body, headers=headers("sim-basic-v")).text)
        assert video[-1]["progress"] == 100
    assert client.post(CHAT, json=body, headers=headers("sim-basic-v")).status_code == 429
    body["mediaGenInput"]["textToVideo"]["duration"] = 30
    assert client.post(CHAT, json=body, headers=headers(TOKEN)).status_code == 400


def test_share_link_and_upscale(client: httpx.Client, sim: SimServer) -> None:
    post = media_post(client, mediaType="MEDIA_POST_TYPE_VIDEO", prompt="x")
    link = client.post(
        "/rest/media/post/create-link",
        json={"postId": post, "source": "post-page", "platform": "web"},
        headers=headers(TOKEN),
    )
    assert post in link.json()["shareLink"]
    body = {
        "modelName": "imagine-video-gen",
        "message": "x",
        "mediaGenInput": {"textToVideo": {"prompt": "x", "duration": 6}},
    }
    video, _ = video_frames(client.post(CHAT, json=body, headers=headers(TOKEN)).text)
    hd = client.post(
        "/rest/media/video/upscale", json={"videoId": video[-1]["videoId"]}, headers=headers(TOKEN)
    ).json()
    assert hd["hdMediaUrl"].startswith(sim.assets_url)


def test_absolute_urls_use_the_configured_assets_base() -> None:
    with SimServer(assets_url="https://assets.example.test") as other, httpx.Client(base_url=other.url) as c:
        assert other.assets_url == "https://assets.example.test/"
        body = {
            "modelName": "imagine-video-gen",
            "message": "x",
            "mediaGenInput": {"textToVideo": {"prompt": "x", "duration": 6}},
        }
        video, _ = video_frames(c.post(CHAT, json=body, headers=headers(TOKEN)).text)
        hd = c.post(
            "/rest/media/video/upscale", json={"videoId": video[-1]["videoId"]}, headers=headers(TOKEN)
        ).json()
        assert hd["hdMediaUrl"].startswith("https://assets.example.test/users/")
