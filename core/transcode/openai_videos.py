"""Video jobs as OpenAI's Videos API shows them (and a finished video in a chat answer).

    video_object(video)      the video object: `{id, object: "video", status, progress, ...}`
    video_list(page)         `{object: "list", data, first_id, last_id, has_more}`
    video_deleted(id)        `{id, object: "video.deleted", deleted: true}`
    video_link(url, fmt)     a stored video's link as a chat answer's text (`video_format`)
    video_pending(id, base)  a chat answer's text while the job still runs: where to follow it

Times go out as whole seconds, `seconds` as a string, and `quality` is always "standard" (the
upstream has one quality); `error` is set on a failed job only.
"""

from __future__ import annotations

import html
from typing import Any

from core.media import Video, VideoPage
from core.ports import JobStatus


def video_object(video: Video) -> dict[str, Any]:
    error = None
    if video.status is JobStatus.FAILED:
        error = {"code": video.error_code, "message": video.error_message}
    return {
        "id": video.id,
        "object": "video",
        "model": video.model,
        "status": video.status.value,
        "progress": video.progress,
        "created_at": int(video.created_at),
        "completed_at": int(video.completed_at) if video.completed_at else None,
        "expires_at": int(video.expires_at) if video.expires_at else None,
        "prompt": video.prompt,
        "seconds": str(video.seconds),
        "size": video.size,
        "quality": "standard",
        "remixed_from_video_id": video.remixed_from,
        "error": error,
    }


def video_list(page: VideoPage) -> dict[str, Any]:
    data = [video_object(video) for video in page.videos]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": page.has_more,
    }


def video_deleted(video_id: str) -> dict[str, Any]:
    return {"id": video_id, "object": "video.deleted", "deleted": True}


def video_link(url: str, fmt: str) -> str:
    """`html`: a <video> element; `markdown`: a link; anything else: the bare URL."""
    if fmt == "html":
        return f'<video controls src="{html.escape(url, quote=True)}"></video>'
    return f"[video]({url})" if fmt == "markdown" else url


def video_pending(video_id: str, base_url: str) -> str:
    status = f"{base_url}/v1/videos/{video_id}"
    return (
        f"The video is still being made (job `{video_id}`). Its status: {status} — "
        f"its file, once completed: {status}/content"
    )
