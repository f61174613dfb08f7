"""POST /v1/images/generations, POST /v1/images/edits, and the media download route.

HTTP only: bodies become an `ImageRequest`, the image service generates and stores, and
core/transcode/openai_images.py renders the answer, OpenAI's `{created, data: [{url} | {b64_json}]}`.
`GET /v1/files/{id}/content` serves stored media: with `exp` and `sig` (a signed link) it needs no
API key and checks the signature in constant time and the expiry; without them it is an ordinary
authenticated route.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from core.catalog import Capability, require_capability
from core.errors import InvalidRequest, NotFound, PermissionDenied
from core.services.image_requests import check_images, check_request
from core.services.media_lifecycle import MediaGone, expired
from core.transcode.normalize import Attachment
from core.transcode.openai_images import images_body
from functions._access import allow
from functions._app import signed_link
from functions._http import base_url, deps_of, json_response, read_body, read_json
from functions._multipart import parse_form

DEFAULT_MODEL = "grok-imagine-image"
DEFAULT_EDIT_MODEL = "grok-imagine-image-edit"


class GenerationBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    prompt: Any = None
    model: str | None = None
    n: Any = None
    size: Any = None
    response_format: Any = None
    stream: Any = None


async def generations(request: Request) -> Response:
    deps = deps_of(request)
    body = await read_json(request, GenerationBody)
    if body.stream:
        raise InvalidRequest("'stream' is not supported for image generation.", param="stream")
    allow(request, body.model or DEFAULT_MODEL)
    model = require_capability(body.model or DEFAULT_MODEL, Capability.IMAGE)
    image_request = check_request(
        model,
        prompt=body.prompt,
        n=body.n,
        size=body.size,
        response_format=body.response_format,
        default_format=deps.settings.image_format,
        base_url=base_url(request, deps),
    )
    return json_response(images_body(await deps.image_service.generate(image_request)))


async def edits(request: Request) -> Response:
    deps = deps_of(request)
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidRequest("Image edits take multipart/form-data (fields image, prompt, n, size…).")
    form = parse_form(await read_body(request), content_type)
    if form.files_named("mask") or form.get("mask"):
        raise InvalidRequest("'mask' is not supported: the upstream edits whole images.", param="mask")
    if form.get("stream") in ("true", "True", "1"):
        raise InvalidRequest("'stream' is not supported for image edits.", param="stream")
    allow(request, form.get("model") or DEFAULT_EDIT_MODEL)
    model = require_capability(form.get("model") or DEFAULT_EDIT_MODEL, Capability.IMAGE_EDIT)
    uploads = form.files_named("image", "image[]")
    images = check_images(
        [Attachment(f.filename or "image", f.content_type, data=f.data, param="image") for f in uploads],
        model,
    )
    image_request = check_request(
        model,
        prompt=form.get("prompt"),
        n=form.get("n"),
        size=form.get("size"),
        response_format=form.get("response_format"),
        default_format=deps.settings.image_format,
        base_url=base_url(request, deps),
        images=images,
    )
    return json_response(images_body(await deps.image_service.generate(image_request)))


async def file_content(request: Request) -> Response:
    deps = deps_of(request)
    media_id = request.path_params["media_id"]
    store = deps.media_store
    if signed_link(request.scope):  # the edge let it in without a key: the signature must hold
        exp, sig = request.query_params.get("exp"), request.query_params.get("sig")
        verify = getattr(store, "verify", None)
        if verify is None or not verify(media_id, exp or "", sig or ""):
            raise PermissionDenied(
                "This media link is invalid or has expired; ask the API for a new one.",
                code="invalid_signature",
            )
    else:
        redirect = await store.redirect(media_id)
        if redirect is not None:
            return RedirectResponse(redirect, status_code=307)
    blob = await store.open(media_id)
    settings = deps.settings
    if blob is None:
        if signed_link(request.scope):  # we signed it, so it existed: the sweep removed it
            raise MediaGone(f"The media '{media_id}' expired.", param="media_id")
        raise NotFound(f"No stored media '{media_id}'.", code="media_not_found")
    if expired(blob.created_at, now=deps.clock(), retention=settings.media_retention):
        await blob.chunks.aclose()  # type: ignore[attr-defined]
        raise MediaGone(f"The media '{media_id}' expired.", param="media_id")
    return StreamingResponse(
        blob.chunks,
        media_type=blob.mime,
        headers={"content-length": str(blob.size), "cache-control": "private, max-age=3600"},
    )


routes = [
    Route("/v1/images/generations", generations, methods=["POST"]),
    Route("/v1/images/edits", edits, methods=["POST"]),
    Route("/v1/files/{media_id}/content", file_content, methods=["GET"]),
]
