"""The console's jobs and media pages.

GET    /admin/api/jobs            video jobs of every configured API key (and of an open gateway),
                                  newest first: status, progress, error, attempts, what was asked
GET    /admin/api/media           stored files: id, size, age; their count and total bytes
DELETE /admin/api/media/{id}      delete one file
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.errors import InvalidRequest, NotFound
from core.ports import Job, MediaInventory
from functions._console_session import admin_deps
from functions._http import json_response

SHOWN_PARAMS = ("model", "prompt", "seconds", "size", "resolution", "aspect_ratio", "remixed_from_video_id")


def _job(job: Job) -> dict[str, Any]:
    asked = {k: job.params[k] for k in SHOWN_PARAMS if k in job.params}
    if isinstance(asked.get("prompt"), str):
        asked["prompt"] = asked["prompt"][:300]
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status.value,
        "progress": job.progress,
        "error_code": job.error_code,
        "error_message": job.error_message,
        "attempts": job.attempts,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "completed_at": job.completed_at,
        "params": asked,
        "media": {variant: media_id for variant, media_id in job.result.items() if isinstance(media_id, str)},
    }


async def list_jobs(request: Request) -> Response:
    from core.services.videos import owner_of

    deps = await admin_deps(request)
    try:
        limit = min(200, max(1, int(request.query_params.get("limit", "50"))))
    except ValueError:
        raise InvalidRequest("`limit` must be an integer.", param="limit") from None
    jobs = deps.job_store
    owners = {owner_of(None), *(owner_of(key) for key in deps.settings.api_keys)}
    found: list[Job] = []
    for owner in sorted(owners):
        found += await jobs.list(owner, limit=limit)
    found.sort(key=lambda j: (-j.created_at, j.id))
    return json_response({"data": [_job(j) for j in found[:limit]]}, headers={"cache-control": "no-store"})


def _inventory(deps: Any) -> MediaInventory:
    store: Any = deps.media_store
    return store  # both media stores (local folder, S3) keep an inventory


async def list_media(request: Request) -> Response:
    deps = await admin_deps(request)
    items, count, total = await _inventory(deps).inventory(limit=500)
    return json_response(
        {
            "data": [{"id": m.id, "size": m.size, "created_at": m.created_at} for m in items],
            "count": count,
            "total_bytes": total,
            "cap_bytes": None,  # no size cap exists: files are kept `media_retention` seconds
            "store": "s3" if deps.settings.media.startswith("s3://") else "local folder",
            "retention_seconds": deps.settings.media_retention,
        },
        headers={"cache-control": "no-store"},
    )


async def delete_media(request: Request) -> Response:
    deps = await admin_deps(request)
    media_id = request.path_params["media_id"]
    if not await _inventory(deps).delete(media_id):
        raise NotFound(f"No stored file `{media_id}`.", param="id", code="media_not_found")
    return json_response({"id": media_id, "deleted": True})


routes = [
    Route("/admin/api/jobs", list_jobs, methods=["GET"]),
    Route("/admin/api/media", list_media, methods=["GET"]),
    Route("/admin/api/media/{media_id}", delete_media, methods=["DELETE"]),
]
