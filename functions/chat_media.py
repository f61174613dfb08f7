"""Images and videos through /v1/chat/completions (for chat-only clients such as Open WebUI).

`grok-imagine-image*` and `grok-imagine-video` in chat completions: the prompt is the latest
message with text; `image_config {n, size, response_format}` and `video_config {seconds, size,
resolution_name, preset}` tune the media. Streamed, progress goes out as `reasoning_content`
deltas (and SSE comments while nothing changes), then one content delta with the result, then
stop and [DONE]. The result is never a raw upstream asset link: images are stored and linked
(signed gateway link or presigned S3 URL), as markdown by default, or inlined as base64;
a video is a job like any other (`/v1/videos`), so it survives this function: the answer waits
for it up to `chat_video_wait` seconds and otherwise ends with the job's status link.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import AsyncGenerator, Awaitable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from core.catalog import Capability, Model
from core.errors import GatewayError
from core.ports import JobStatus
from core.services import images as image_requests
from core.services.videos import check_request as check_video
from core.services.videos import owner_of
from core.transcode.openai_chat import ChatCompletionRequest
from functions._app import presented_key
from functions._http import json_response
from functions._wiring import Deps

POLL = 0.5


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
        if isinstance(content, list):
            urls = [
                (p.get("image_url") or {}).get("url")
                if isinstance(p.get("image_url"), dict)
                else p.get("image_url")
                for p in content
                if isinstance(p, dict) and p.get("type") == "image_url"
            ]
            urls = [u for u in urls if isinstance(u, str) and u]
            if urls:
                return urls[-1]
    return ""


class _Answer:
    """The chunks of one chat completion of media: progress as reasoning, the result as content."""

    def __init__(self, model: str) -> None:
        self.id = "chatcmpl-" + orjson.dumps(time.time_ns()).decode()
        self.model = model
        self.created = int(time.time())
        self.reasoning: list[str] = []

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + orjson.dumps(body) + b"\n\n"

    def final(self, content: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if self.reasoning:
            message["reasoning_content"] = "\n".join(self.reasoning)
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }


def _render_image(item: dict[str, Any], fmt: str, index: int) -> str:
    if "b64_json" in item:
        return f"![image {index}](data:image/png;base64,{item['b64_json']})"
    url = str(item["url"])
    return url if fmt == "url" else f"![image {index}]({url})"


def _render_video(url: str, fmt: str) -> str:
    if fmt == "html":
        return f'<video controls src="{html.escape(url, quote=True)}"></video>'
    if fmt == "markdown":
        return f"[video]({url})"
    return url


async def serve(
    request: Request, deps: Deps, body: ChatCompletionRequest, model: Model, base_url: str
) -> Response:
    """The chat completion of an image or video model (validation errors before any byte)."""
    prompt = prompt_of(body.messages)
    answer = _Answer(model.id)
    if model.capability is Capability.VIDEO:
        work, steps = await _video(request, deps, body, model, prompt, base_url, answer)
    else:
        work, steps = _image(deps, body, model, prompt, base_url, answer)
    if not body.stream:
        async for _ in steps():
            pass
        return json_response(answer.final(await work))
    return StreamingResponse(_stream(answer, work, steps), media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no"})  # fmt: skip


async def _stream(answer: _Answer, work: Awaitable[str], steps: Any) -> AsyncGenerator[bytes, None]:
    yield answer.chunk({"role": "assistant", "content": ""})
    try:
        async for line in steps():
            yield answer.chunk({"reasoning_content": line + "\n"}) if line else b": progress\n\n"
        content = await work
    except GatewayError as exc:
        error = {"message": exc.message, "type": exc.openai_type, "param": exc.param, "code": exc.code}
        yield b"data: " + orjson.dumps({"error": error}) + b"\n\n"
        yield b"data: [DONE]\n\n"
        return
    yield answer.chunk({"content": content})
    yield answer.chunk({}, "stop") + b"data: [DONE]\n\n"


def _image(
    deps: Deps, body: ChatCompletionRequest, model: Model, prompt: str, base_url: str, answer: _Answer
) -> Any:
    from functions.images import image_service

    config = body.image_config
    fmt = (config.response_format if config else None) or deps.settings.image_format
    request = image_requests.check_request(
        model,
        prompt=prompt,
        n=config.n if config else None,
        size=config.size if config else None,
        response_format="b64_json" if fmt == "b64_json" else "url",
        default_format="url",
        base_url=base_url,
    )
    task = asyncio.ensure_future(image_service(deps).generate(request))

    async def work() -> str:
        result = await task
        items = result["data"]
        return "\n\n".join(
            _render_image(item, fmt if fmt != "url" else "markdown", i + 1) for i, item in enumerate(items)
        )

    async def steps() -> AsyncGenerator[str, None]:
        line = f"Generating {request.n} image(s)…"
        answer.reasoning.append(line)
        yield line
        started = time.monotonic()
        while not task.done():
            await asyncio.wait((task,), timeout=deps.settings.heartbeat_seconds)
            if not task.done():
                yield ""  # a comment keeps the connection alive
        if task.exception() is None:
            line = f"Done in {time.monotonic() - started:.1f} s."
            answer.reasoning.append(line)
            yield line

    return work(), steps


async def _video(
    request: Request,
    deps: Deps,
    body: ChatCompletionRequest,
    model: Model,
    prompt: str,
    base_url: str,
    answer: _Answer,
) -> Any:
    from functions.images import media_store
    from functions.videos import reference_image, start, video_service

    config = body.video_config
    image = image_of(body.messages)

    def checked(reference: str) -> Any:
        return check_video(
            model=model.id,
            prompt=prompt,
            seconds=config.seconds if config else None,
            size=config.size if config else None,
            resolution=config.resolution_name if config else None,
            preset=config.preset if config else None,
            reference=reference,
        )

    video_request = checked("pending" if image else "")
    if image:  # image-to-video from the picture in the conversation
        video_request = checked(await reference_image(deps, {"image_url": image}))
    service = video_service(deps)
    owner = owner_of(presented_key(dict(request.scope["headers"])) if deps.settings.api_keys else None)
    job = await service.create(video_request, owner=owner)
    await start(deps, job)
    outcome: dict[str, str] = {}

    async def steps() -> AsyncGenerator[str, None]:
        deadline = time.monotonic() + deps.settings.chat_video_wait
        shown = -1
        beat = time.monotonic()
        line = f"Video job {job.id} queued."
        answer.reasoning.append(line)
        yield line
        while time.monotonic() < deadline:
            current = await service.get(job.id)
            if current.progress > shown and current.status is JobStatus.IN_PROGRESS:
                shown = current.progress
                line = f"Generating video… {shown}%"
                answer.reasoning.append(line)
                yield line
                beat = time.monotonic()
            if current.status is JobStatus.COMPLETED:
                media = media_store(deps)
                url = await media.link(current.result["video"], base_url)
                outcome["content"] = _render_video(url, deps.settings.video_format)
                return
            if current.status is JobStatus.FAILED:
                outcome["error"] = f"{current.error_code}: {current.error_message}"
                return
            if time.monotonic() - beat >= deps.settings.heartbeat_seconds:
                beat = time.monotonic()
                yield ""
            await asyncio.sleep(POLL)
        status = f"{base_url}/v1/videos/{job.id}"
        outcome["content"] = (
            f"The video is still being made (job `{job.id}`). Its status: {status} — "
            f"its file, once completed: {status}/content"
        )

    async def work() -> str:
        if "error" in outcome:
            from core.errors import UpstreamError

            raise UpstreamError(f"The video failed: {outcome['error']}", code="video_generation_failed")
        return outcome.get("content", "")

    return _Lazy(work), steps


class _Lazy:
    """An awaitable made only when awaited (after the steps ran)."""

    def __init__(self, make: Any) -> None:
        self._make = make

    def __await__(self) -> Any:
        return self._make().__await__()
