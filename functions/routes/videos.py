"""OpenAI's Videos API: POST/GET /v1/videos, GET/DELETE /v1/videos/{id}, POST /v1/videos/{id}/remix,
GET /v1/videos/{id}/content?variant=video|thumbnail.

Create answers at once with a queued job owned by the caller's API key. Who runs it depends on
`video_runner`: `inline` (the local process: an asyncio task, and any job nobody runs is picked
up when a client polls it), `cron` (`functions/video_worker.py`, called on a schedule) or
`stepfunctions` (one execution of the video state machine, named after the job). The body is
multipart (what the OpenAI SDK sends), JSON, or a URL-encoded form. An `Idempotency-Key` header
makes a repeated create return the first job.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from core.errors import InvalidRequest
from core.ports import Job, JobStatus
from core.services.video_requests import DEFAULT_MODEL as VIDEO_MODEL
from core.services.video_requests import VideoRequest, check_fields, owner_of
from core.transcode.normalize import Attachment, attachment_from_url, check_attachment
from core.transcode.openai_videos import video_deleted, video_list, video_object
from functions._access import allow
from functions._app import presented_key
from functions._http import deps_of, json_response, read_body
from functions._multipart import parse_form
from functions._wiring import Deps


async def _fields(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    raw = await read_body(request)
    if content_type.lower().startswith("multipart/form-data"):
        form = parse_form(raw, content_type)
        fields: dict[str, Any] = {name: values[-1] for name, values in form.fields.items()}
        files = form.files_named("input_reference")
        if files:
            upload = files[-1]
            fields["input_reference"] = Attachment(
                upload.filename or "reference", upload.content_type, data=upload.data, param="input_reference"
            )
        else:  # the SDK's form of {"image_url": …} / {"file_id": …}
            nested = {
                k[16:-1]: v for k, v in fields.items() if k.startswith("input_reference[") and k.endswith("]")
            }
            if nested:
                fields["input_reference"] = nested
        return fields
    if content_type.lower().startswith("application/x-www-form-urlencoded"):
        return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
    try:
        data = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object or multipart/form-data.")
    return data


def owner(request: Request) -> str:
    """Jobs belong to the API key that made them (a hash of it; "" on an open gateway)."""
    return owner_of(
        presented_key(dict(request.scope["headers"])) if deps_of(request).settings.api_keys else None
    )


async def reference_image(deps: Deps, value: Any) -> str:
    """`input_reference` (an uploaded file, `{"image_url": URL or data URL}`, `{"file_id": a stored
    media id}`, or a bare URL) -> the image stored in the media store, for any runner to read."""
    param = "input_reference"
    if isinstance(value, Attachment):
        attachment = value
    elif isinstance(value, str) and value:
        attachment = attachment_from_url(value, param)
    elif isinstance(value, dict) and isinstance(value.get("file_id"), str) and value["file_id"]:
        blob = await deps.media_store.open(value["file_id"])
        if blob is None:
            raise InvalidRequest(f"No stored file '{value['file_id']}'.", param=param)
        data = b"".join([chunk async for chunk in blob.chunks])
        attachment = Attachment("reference", blob.mime, data=data, param=param)
    elif isinstance(value, dict) and isinstance(value.get("image_url"), str) and value["image_url"]:
        attachment = attachment_from_url(value["image_url"], param)
    else:
        raise InvalidRequest(
            '\'input_reference\' must be an image file, {"image_url": …} or {"file_id": …}.', param=param
        )
    if attachment.url:
        fetched = await deps.fetcher.fetch(attachment.url, param=param)
        attachment = Attachment(attachment.name, fetched.mime, data=fetched.data, param=param)
    attachment = check_attachment(attachment)
    if not attachment.mime.startswith("image/"):
        raise InvalidRequest("'input_reference' must be an image (jpeg, png, webp or gif).", param=param)
    return await deps.media_store.put(attachment.data or b"", attachment.mime)


async def checked_request(deps: Deps, fields: dict[str, Any]) -> VideoRequest:
    """The request, every field checked before the reference image (if any) is stored, so a bad
    field stores nothing."""

    given = fields.get("input_reference") not in (None, "")
    request = check_fields(fields, reference="pending" if given else "", resolution="resolution_name")
    if not given:
        return request
    stored = await reference_image(deps, fields["input_reference"])
    return check_fields(fields, reference=stored, resolution="resolution_name")


async def create(request: Request) -> Response:
    deps = deps_of(request)
    fields = await _fields(request)
    allow(request, str(fields.get("model") or VIDEO_MODEL))
    video_request = await checked_request(deps, fields)
    service = deps.video_service
    job = await service.create(
        video_request, owner=owner(request), idempotency_key=request.headers.get("idempotency-key")
    )
    await start(deps, job)
    return json_response(video_object(service.video(job)))


async def start(deps: Deps, job: Job) -> None:
    """Hand a new job to the deployment's runner (the cron worker needs nothing: it finds it)."""
    if job.status is not JobStatus.QUEUED:
        return
    runner = deps.inline_runner
    if runner is not None:
        runner.submit(job.id)
    elif deps.settings.video_runner == "stepfunctions":
        from infra.jobs.stepfunctions import start_execution

        await start_execution(deps.stepfunctions, deps.settings.video_state_machine, job.id)


async def retrieve(request: Request) -> Response:
    deps = deps_of(request)
    service = deps.video_service
    job = await service.get(request.path_params["video_id"], owner(request))
    runner = deps.inline_runner
    if runner is not None and service.is_due(job) and deps.clock() - job.created_at > 1.0:
        runner.kick()  # queued before a restart, or its task died: this process takes it up
    return json_response(video_object(service.video(job)))


async def list_videos(request: Request) -> Response:
    q = request.query_params
    page = await deps_of(request).video_service.list(
        owner(request), after=q.get("after"), limit=q.get("limit"), order=q.get("order")
    )
    return json_response(video_list(page))


async def delete(request: Request) -> Response:
    service = deps_of(request).video_service
    deleted = await service.delete(request.path_params["video_id"], owner(request))
    return json_response(video_deleted(deleted.id))


async def remix(request: Request) -> Response:
    deps = deps_of(request)
    fields = await _fields(request)
    service = deps.video_service
    job = await service.remix(request.path_params["video_id"], fields.get("prompt"), owner(request))
    await start(deps, job)
    return json_response(video_object(service.video(job)))


async def content(request: Request) -> Response:
    deps = deps_of(request)
    video_id = request.path_params["video_id"]
    variant = request.query_params.get("variant", "video")
    blob, redirect = await deps.video_service.content(video_id, variant, owner(request))
    if redirect is not None:
        return RedirectResponse(redirect, status_code=307)
    assert blob is not None
    ext = "mp4" if variant == "video" else "jpg"
    return StreamingResponse(
        blob.chunks,
        media_type=blob.mime,
        headers={
            "content-length": str(blob.size),
            "content-disposition": f'attachment; filename="{video_id}.{ext}"',
        },
    )


routes = [
    Route("/v1/videos", create, methods=["POST"]),
    Route("/v1/videos", list_videos, methods=["GET"]),
    Route("/v1/videos/{video_id}", retrieve, methods=["GET"]),
    Route("/v1/videos/{video_id}", delete, methods=["DELETE"]),
    Route("/v1/videos/{video_id}/remix", remix, methods=["POST"]),
    Route("/v1/videos/{video_id}/content", content, methods=["GET"]),
]
