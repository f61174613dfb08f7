"""Images and videos through /v1/chat/completions (for chat-only clients such as Open WebUI).

`grok-imagine-image*` and `grok-imagine-video` in chat completions: the prompt is the latest
message with text; `image_config {n, size, response_format}` and `video_config {seconds, size,
resolution_name, preset}` tune the media, and for a video the conversation's last image is its
reference. Streamed, progress goes out as `reasoning_content` deltas (and SSE comments while
nothing changes), then one content delta with the result, then stop and [DONE]; a failure after
the first byte is an `error` event before [DONE]. The result is never a raw upstream asset link:
images are stored and linked (signed gateway link or presigned S3 URL), as markdown by default,
or inlined as base64; a video is a job like any other (`/v1/videos`), so it survives this
function: the answer waits for it up to `chat_video_wait` seconds, else ends with its status link.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from core.catalog import Capability, Model
from core.errors import GatewayError, InternalError, UpstreamError
from core.ports import Job, JobStatus
from core.services import image_requests
from core.transcode.openai_chat import ChatCompletionRequest
from core.transcode.openai_images import markdown
from core.transcode.openai_media_chat import MediaAnswer
from core.transcode.openai_videos import video_link, video_pending
from functions._http import json_response
from functions._sse import CHAT
from functions._wiring import Deps

log = logging.getLogger("grokgate.chat_media")
POLL = 0.5  # seconds between two reads of a video job


class Work(Protocol):
    """Media being made: `progress()` yields lines to show ("" when there is only time passing),
    then `content()` is the answer's text (or raises the failure)."""

    def progress(self) -> AsyncIterator[str]: ...

    async def content(self) -> str: ...


def prompt_of(messages: list[Any]) -> str:
    """The latest message's text: a string, or its text parts joined."""
    for message in reversed(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str) and content.strip():
            return content.strip()
        if isinstance(content, list):
            texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
            text = " ".join(t for t in texts if t).strip()
            if text:
                return text
    return ""


def image_of(messages: list[Any]) -> str:
    """The last `image_url` of the latest message that has one (a video's reference image)."""
    for message in reversed(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        urls = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "image_url":
                value = part.get("image_url")
                url = value.get("url") if isinstance(value, dict) else value
                if isinstance(url, str) and url:
                    urls.append(url)
        if urls:
            return urls[-1]
    return ""


class _Images:
    def __init__(self, deps: Deps, request: image_requests.ImageRequest) -> None:
        self.deps = deps
        self.n = request.n
        self.rises: asyncio.Queue[int] = asyncio.Queue()
        self.task = asyncio.ensure_future(deps.image_service.generate(request, self.rises.put_nowait))

    async def progress(self) -> AsyncIterator[str]:
        yield f"Generating {self.n} image(s)…"
        started = time.monotonic()
        while not self.task.done():
            rise = asyncio.ensure_future(self.rises.get())
            try:
                await asyncio.wait(
                    (self.task, rise),
                    timeout=self.deps.settings.heartbeat_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:  # also when the client went away mid-wait
                risen = rise.done()
                if not risen:
                    rise.cancel()
            if risen:
                yield f"Generating images… {rise.result()}%"
            elif not self.task.done():
                yield ""
        if not self.task.cancelled() and self.task.exception() is None:
            yield f"Done in {time.monotonic() - started:.1f} s."

    async def content(self) -> str:
        return markdown(await self.task)


class _Video:
    def __init__(self, deps: Deps, job: Job, base_url: str) -> None:
        self.deps = deps
        self.job = job
        self.base_url = base_url
        self.service = deps.video_service
        self.final: Job | None = None

    async def progress(self) -> AsyncIterator[str]:
        settings = self.deps.settings
        deadline = time.monotonic() + settings.chat_video_wait
        yield f"Video job {self.job.id} queued."
        shown, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            current = await self.service.get(self.job.id)
            if current.status in (JobStatus.COMPLETED, JobStatus.FAILED):
                self.final = current
                return
            if current.status is JobStatus.IN_PROGRESS and current.progress > shown:
                shown, quiet_since = current.progress, time.monotonic()
                yield f"Generating video… {shown}%"
            elif time.monotonic() - quiet_since >= settings.heartbeat_seconds:
                quiet_since = time.monotonic()
                yield ""
            await asyncio.sleep(POLL)

    async def content(self) -> str:
        job = self.final
        if job is None:  # still running: the answer ends with where to follow it
            return video_pending(self.job.id, self.base_url)
        if job.status is JobStatus.FAILED:
            raise UpstreamError(
                f"The video failed: {job.error_message or job.error_code}",
                code=job.error_code or "video_generation_failed",
            )
        url = await self.deps.media_store.link(job.result["video"], self.base_url)
        return video_link(url, self.deps.settings.video_format)


async def _images(deps: Deps, body: ChatCompletionRequest, model: Model, base_url: str) -> Work:
    config = body.image_config
    fmt = (config.response_format if config else None) or deps.settings.image_format
    request = image_requests.check_request(
        model,
        prompt=prompt_of(body.messages),
        n=config.n if config else None,
        size=config.size if config else None,
        response_format="b64_json" if fmt == "b64_json" else "url",
        default_format="url",
        base_url=base_url,
    )
    return _Images(deps, request)


async def _video(
    request: Request, deps: Deps, body: ChatCompletionRequest, model: Model, base_url: str
) -> Work:
    from functions.routes.videos import checked_request, owner, start

    config = body.video_config
    image = image_of(body.messages)
    fields: dict[str, Any] = {
        "model": model.id,
        "prompt": prompt_of(body.messages),
        "seconds": config.seconds if config else None,
        "size": config.size if config else None,
        "resolution_name": config.resolution_name if config else None,
        "preset": config.preset if config else None,
        "input_reference": {"image_url": image} if image else None,
    }
    video_request = await checked_request(deps, fields)
    job = await deps.video_service.create(video_request, owner=owner(request))
    await start(deps, job)
    return _Video(deps, job, base_url)


async def serve(
    request: Request, deps: Deps, body: ChatCompletionRequest, model: Model, base_url: str
) -> Response:
    """The chat completion of an image or video model (a bad request is refused before any byte)."""
    if model.capability is Capability.VIDEO:
        work = await _video(request, deps, body, model, base_url)
    else:
        work = await _images(deps, body, model, base_url)
    answer = MediaAnswer(model.id)
    if not body.stream:
        async for line in work.progress():
            if line:
                answer.reasoning.append(line)
        return json_response(answer.final(await work.content()))
    return StreamingResponse(
        stream_answer(answer, work),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


async def stream_answer(answer: MediaAnswer, work: Work) -> AsyncGenerator[bytes, None]:
    """Progress as reasoning deltas (an SSE comment while only time passes), then the content and
    stop; a failure after the first byte (a crash too) is the error chunk. Every path ends with
    [DONE], as in the chat dialects' loop (functions/_sse.py)."""
    frame = CHAT.frame
    yield frame([answer.head()])
    try:
        async for line in work.progress():
            yield frame([answer.progress(line)]) if line else b": progress\n\n"
        content = await work.content()
    except GatewayError as exc:
        yield frame([answer.error(exc)]) + CHAT.tail
        return
    except Exception:
        log.exception("media answer %s crashed", answer.id)
        yield frame([answer.error(InternalError(f"The answer {answer.id} failed."))]) + CHAT.tail
        return
    yield frame([answer.content(content)])
    yield frame([answer.stop()]) + CHAT.tail
