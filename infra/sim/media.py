"""Media through E1 (image edit, video: docs/protocol.md#media) and the media-post calls E13-E15."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from infra.sim import frames, pixels
from infra.sim.accounts import Account
from infra.sim.assets import iso
from infra.sim.directives import parse
from infra.sim.gate import admit
from infra.sim.state import SimState
from infra.sim.wire import RATE_LIMITED, NDJSONStream, bad_request, json_response

_POST_TYPES = ("MEDIA_POST_TYPE_IMAGE", "MEDIA_POST_TYPE_VIDEO")
_VIDEO_PROGRESS = (1, 20, 45, 70, 95)


def _dig(body: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def kind(body: dict[str, Any]) -> str | None:
    """Which media flow an E1 body asks for: edit-v2, edit-v3, video-v2, video-v3, or None for chat."""
    model = body.get("modelName")
    model_map = _dig(body, "responseMetadata", "modelConfigOverride", "modelMap") or {}
    if model == "imagine-image-edit":
        return "edit-v3" if "mediaGenInput" in body else "edit-v2"
    if model == "imagine-video-gen":
        return "video-v3" if "mediaGenInput" in body else "video-v2"
    if model == "grok-3" and "videoGenModelConfig" in model_map:
        return "video-v2"
    return None


def _asset_path(reference: str) -> str:
    at = reference.find("users/")
    return reference[at:] if at >= 0 else reference


def _validate(state: SimState, account: Account, body: dict[str, Any], flow: str) -> str | None:
    if not isinstance(body.get("message"), str):
        return "Invalid request: missing required field `message`"
    model_map = _dig(body, "responseMetadata", "modelConfigOverride", "modelMap") or {}
    if flow == "edit-v2":
        config = model_map.get("imageEditModelConfig")
        refs = _dig(config, "imageReferences")
        if not isinstance(refs, list) or not refs:
            return "Invalid request: imageEditModelConfig.imageReferences is required"
        for ref in refs:
            asset = state.assets.by_path(_asset_path(str(ref)))
            if asset is None or asset.owner != account.user_id:
                return f"Invalid request: unknown image reference {ref!r}"
        if _dig(config, "parentPostId") not in state.posts:
            return "Invalid request: imageEditModelConfig.parentPostId does not name a media post"
    elif flow == "edit-v3":
        spec = _dig(body, "mediaGenInput", "imageToImage")
        inputs = _dig(spec, "inputAssets")
        if not isinstance(_dig(spec, "prompt"), str) or not isinstance(inputs, list) or not inputs:
            return "Invalid request: mediaGenInput.imageToImage needs prompt and inputAssets"
        for file_id in inputs:
            asset = state.assets.by_id(str(file_id))
            if asset is None or asset.owner != account.user_id:
                return f"Invalid request: unknown input asset {file_id!r}"
    elif flow == "video-v3" and "mediaGenInput" in body:
        spec = _dig(body, "mediaGenInput", "textToVideo")
        duration = _dig(spec, "duration")
        if (
            not isinstance(_dig(spec, "prompt"), str)
            or not isinstance(duration, int)
            or not 1 <= duration <= 15
        ):
            return "Invalid request: mediaGenInput.textToVideo needs prompt and duration 1-15"
    else:
        config = model_map.get("videoGenModelConfig")
        if not isinstance(config, dict):
            return "Invalid request: videoGenModelConfig is required"
        if config.get("parentPostId") not in state.posts and not config.get("isVideoExtension"):
            return "Invalid request: videoGenModelConfig.parentPostId does not name a media post"
        if config.get("resolutionName", "720p") not in ("480p", "720p"):
            return "Invalid request: unsupported resolutionName"
    return None


def generate(state: SimState, account: Account, body: dict[str, Any], flow: str) -> Response | NDJSONStream:
    problem = _validate(state, account, body, flow)
    if problem:
        return bad_request(problem)
    directive = parse(body["message"])
    if directive.status:
        return json_response(
            {"error": {"code": 13, "message": "Simulated upstream status", "details": []}}, directive.status
        )
    resolution = _dig(body, "mediaGenInput", "textToVideo", "resolutionName") or _dig(
        body, "responseMetadata", "modelConfigOverride", "modelMap", "videoGenModelConfig", "resolutionName"
    )
    bucket = "image_edit" if flow.startswith("edit") else ("video" if resolution == "480p" else "video_720p")
    if not state.accounts.consume(account, bucket):
        return json_response(RATE_LIMITED, 429)
    cid = state.conversations.create(account.token)
    lines = [frames.conversation(cid, True)]
    if flow.startswith("edit"):
        count = body.get("imageGenerationCount", 2) if flow == "edit-v2" else 1
        lines += _edit_frames(
            state, account, body["message"], max(1, min(int(count), 4)), directive.moderated
        )
    else:
        lines += _video_frames(state, account, resolution or "720p", directive.moderated)
    delays = [directive.delay_ms / 1000] * len(lines) if directive.delay_ms else None
    return NDJSONStream(lines, delays, ttfb=directive.ttfb_ms / 1000)


def _edit_frames(state: SimState, account: Account, message: str, count: int, moderated: bool) -> list[bytes]:
    user_rid, rid = str(uuid.uuid4()), str(uuid.uuid4())
    out = [frames.user_response(user_rid, message, [])]
    finals, asset_ids = [], []
    for index in range(count):
        image_id = str(uuid.uuid4())
        part = f"users/{account.user_id}/generated/{image_id}-part-0/image.jpg"
        final = f"users/{account.user_id}/generated/{image_id}/image.jpg"
        state.assets.add(account.user_id, part, pixels.sample_jpeg(index + 1), "image/jpeg")
        asset = state.assets.add(account.user_id, final, pixels.sample_jpeg(index + 5), "image/jpeg")
        blocked = moderated and index == 0
        for progress, url in ((25, part), (60, part), (100, final)):
            frame: dict[str, Any] = {
                "imageIndex": index,
                "progress": progress,
                "imageUrl": url,
                "moderated": blocked and progress == 100,
            }
            if progress == 100:
                frame["assetId"] = asset.asset_id
            out.append(frames.response({"streamingImageGenerationResponse": frame, "responseId": rid}))
        if not blocked:
            finals.append(final)
            asset_ids.append(asset.asset_id)
    out += [
        frames.soft_stop(rid),
        frames.final_metadata(),
        frames.model_response(rid, user_rid, "", images=finals, files=asset_ids),
    ]
    return out


def _video_frames(state: SimState, account: Account, resolution: str, moderated: bool) -> list[bytes]:
    video_id, post_id, rid = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    base = f"users/{account.user_id}/generated/{video_id}"
    asset = state.assets.add(
        account.user_id,
        f"{base}/generated_video.mp4",
        pixels.sample_mp4(len(state.assets.owned_by(account.user_id))),
        "video/mp4",
        asset_id=video_id,
    )
    state.assets.add(account.user_id, f"{base}/preview_image.jpg", pixels.sample_jpeg(7), "image/jpeg")
    state.posts[post_id] = {"id": post_id, "userId": account.user_id, "mediaType": "MEDIA_POST_TYPE_VIDEO"}
    out = []
    for i, progress in enumerate(_VIDEO_PROGRESS):
        frame: dict[str, Any] = {"videoId": video_id, "progress": progress, "videoPostId": post_id}
        if i == 0:
            frame["resolutionName"] = resolution
        out.append(frames.response({"streamingVideoGenerationResponse": frame}))
    final = {
        "videoId": video_id,
        "progress": 100,
        "assetId": asset.asset_id,
        "videoPostId": post_id,
        "videoUrl": asset.path,
        "thumbnailImageUrl": f"{base}/preview_image.jpg",
        "resolutionName": resolution,
        "moderated": moderated,
    }
    out.append(frames.response({"streamingVideoGenerationResponse": final}))
    out.append(frames.response({"token": "I generated a video", "isSoftStop": True, "responseId": rid}))
    out.append(frames.final_metadata())
    out.append(
        frames.model_response(rid, "", "I generated a video", files=[] if moderated else [asset.asset_id])
    )
    return out


def routes(state: SimState) -> list[Route]:
    async def create_post(request: Request) -> Response:
        account = await admit(state, request, statsig=True)
        if isinstance(account, Response):
            return account
        body = await request.json() if await request.body() else {}
        if not isinstance(body, dict) or body.get("mediaType") not in _POST_TYPES:
            return bad_request(
                "Invalid request: mediaType must be MEDIA_POST_TYPE_IMAGE or MEDIA_POST_TYPE_VIDEO"
            )
        if not body.get("prompt") and not body.get("mediaUrl"):
            return bad_request("Invalid request: prompt or mediaUrl is required")
        post_id = str(uuid.uuid4())
        post = {"id": post_id, "userId": account.user_id, "createTime": iso(), "mediaType": body["mediaType"],
                "prompt": body.get("prompt", ""), "mediaUrl": body.get("mediaUrl", "")}  # fmt: skip
        state.posts[post_id] = post
        return json_response({"post": post})

    async def create_link(request: Request) -> Response:
        account = await admit(state, request)
        if isinstance(account, Response):
            return account
        body = await request.json()
        if not isinstance(body, dict) or body.get("postId") not in state.posts:
            return bad_request("Post not found", 404, 5)
        return json_response(
            {"shareLink": f"https://grok.com/imagine/post/{body['postId']}?source=post-page&platform=web"}
        )

    async def upscale(request: Request) -> Response:
        account = await admit(state, request)
        if isinstance(account, Response):
            return account
        body = await request.json()
        video = state.assets.by_id(str(body.get("videoId"))) if isinstance(body, dict) else None
        if video is None or video.owner != account.user_id:
            return bad_request("Video not found", 404, 5)
        path = video.path.replace("generated_video.mp4", "generated_video_hd.mp4")
        state.assets.add(account.user_id, path, video.data, "video/mp4")
        return json_response({"hdMediaUrl": state.assets_url + path})

    return [
        Route("/rest/media/post/create", create_post, methods=["POST"]),
        Route("/rest/media/post/create-link", create_link, methods=["POST"]),
        Route("/rest/media/video/upscale", upscale, methods=["POST"]),
    ]
