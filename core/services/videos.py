"""Video jobs: create returns a queued job at once; a runner claims it and drives the upstream.

    create()  validate, store a QUEUED job                          -> the OpenAI video object
    run(id)   claim (one runner wins) -> lease an account -> E1 textToVideo (§5.2)
              F10 progress -> job progress (and the claim is extended by a heartbeat)
              final videoUrl -> download with the account's cookie -> MediaStore -> COMPLETED
              failure -> FAILED with {code, message}; a retryable upstream failure first tries
              other accounts (retry budget), like chat
    run_due() what the scheduled worker calls: claim and run due jobs until its deadline

A runner that dies mid-job stops extending its claim; once the claim expires the next runner
(or the local process on the next poll) claims it again as a new attempt, and a job whose
attempts are used up is marked FAILED. No job stays in progress forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.accounts import Lease
from core.catalog import Capability, Model, require_capability
from core.errors import GatewayError, InvalidRequest, NotFound
from core.events import Fault, VideoOut
from core.ports import AccountStore, Job, JobClaim, JobStatus, JobStore, MediaBlob, MediaStore, Upstream
from core.protocol.classify import UpstreamFailure, empty_stream, truncated_stream
from core.protocol.frames import FrameDecoder
from core.protocol.media import MAX_VIDEO_SECONDS, VIDEO_ASPECTS, is_video_url, video_body
from core.services.leased import Leaser, Started
from core.settings import Settings

log = logging.getLogger("grokgate.videos")
KIND = "video"
DEFAULT_MODEL = "grok-imagine-video"
DEFAULT_SECONDS = 6
DEFAULT_SIZE = "720x1280"
MAX_VIDEO_BYTES = 512 * 1024 * 1024


class VideoNotReady(InvalidRequest):
    """The job has no content yet (409, like a conflict with the job's state)."""

    status = 409
    default_code = "video_not_ready"


class ClaimLost(Exception):
    """Another runner took the job over (our claim expired); stop without writing."""


@dataclass(frozen=True, slots=True)
class VideoRequest:
    model: Model
    prompt: str
    seconds: int
    size: str
    resolution: str
    preset: str

    def params(self) -> dict[str, Any]:
        return {
            "model": self.model.id,
            "prompt": self.prompt,
            "seconds": self.seconds,
            "size": self.size,
            "resolution": self.resolution,
            "preset": self.preset,
        }


def check_request(
    *,
    model: Any,
    prompt: Any,
    seconds: Any,
    size: Any,
    resolution: Any = None,
    preset: Any = None,
    input_reference: Any = None,
) -> VideoRequest:
    """The request, or an `InvalidRequest` naming the parameter (limits from the catalog)."""
    chosen = require_capability(
        model if isinstance(model, str) and model else DEFAULT_MODEL, Capability.VIDEO
    )
    limits = chosen.limits
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("'prompt' is required and must be a non-empty string.", param="prompt")
    if input_reference is not None:
        raise InvalidRequest(
            "'input_reference' is not supported: the upstream's current video protocol is text-to-video only.",
            param="input_reference",
        )
    allowed = tuple(int(s) for s in _choices(limits, "seconds") if int(s) <= MAX_VIDEO_SECONDS)
    if seconds is None or seconds == "":
        seconds = DEFAULT_SECONDS
    if isinstance(seconds, str) and seconds.strip().isdigit():
        seconds = int(seconds)
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds not in allowed:
        raise InvalidRequest(
            f"'seconds' must be one of {', '.join(map(str, allowed))} for {chosen.id} (got {seconds!r}).",
            param="seconds",
        )
    sizes = _choices(limits, "sizes")
    size = size or DEFAULT_SIZE
    if size not in sizes:
        raise InvalidRequest(f"'size' must be one of {', '.join(sizes)} (got {size!r}).", param="size")
    resolutions = _choices(limits, "resolutions")
    resolution = resolution or "720p"
    if resolution not in resolutions:
        raise InvalidRequest(
            f"'resolution_name' must be one of {', '.join(resolutions)} (got {resolution!r}).",
            param="resolution_name",
        )
    presets = _choices(limits, "presets")
    preset = preset or "custom"
    if preset not in presets:
        raise InvalidRequest(
            f"'preset' must be one of {', '.join(presets)} (got {preset!r}).", param="preset"
        )
    return VideoRequest(chosen, prompt.strip(), seconds, str(size), str(resolution), str(preset))


def to_openai(job: Job) -> dict[str, Any]:
    """The OpenAI video object."""
    params = job.params
    body: dict[str, Any] = {
        "id": job.id,
        "object": "video",
        "model": params.get("model", DEFAULT_MODEL),
        "status": job.status.value,
        "progress": job.progress,
        "created_at": int(job.created_at),
        "completed_at": int(job.completed_at) if job.completed_at else None,
        "expires_at": None,
        "prompt": params.get("prompt"),
        "seconds": str(params.get("seconds", DEFAULT_SECONDS)),
        "size": params.get("size", DEFAULT_SIZE),
        "quality": "standard",
        "remixed_from_video_id": None,
        "error": None,
    }
    if job.status is JobStatus.FAILED:
        body["error"] = {"code": job.error_code or "video_generation_failed", "message": job.error_message}
    return body


class VideoService:
    """Args:
    settings: retry budget, lease ttl, job claim ttl and attempts, assets URL.
    store: the account pool.
    upstream: E1 and asset downloads.
    media: where finished videos are kept.
    jobs: the shared job store.
    clock: seconds since the epoch.
    """

    def __init__(
        self,
        settings: Settings,
        store: AccountStore,
        upstream: Upstream,
        media: MediaStore,
        jobs: JobStore,
        *,
        clock: Callable[[], float] = time.time,
        leaser: Leaser | None = None,
    ) -> None:
        self.settings = settings
        self.upstream = upstream
        self.media = media
        self.jobs = jobs
        self.clock = clock
        self.leaser = leaser or Leaser(settings, store, clock)

    # --- the API side ------------------------------------------------------------------------

    async def create(self, request: VideoRequest) -> Job:
        now = self.clock()
        job = Job(
            id="video_" + secrets.token_hex(16),
            kind=KIND,
            status=JobStatus.QUEUED,
            params=request.params(),
            created_at=now,
            updated_at=now,
        )
        return await self.jobs.create(job)

    async def get(self, job_id: str) -> Job:
        job = await self.jobs.get(job_id) if job_id.startswith("video_") else None
        if job is None or job.kind != KIND:
            raise NotFound(f"No video with id '{job_id}'.", param="video_id", code="video_not_found")
        return job

    def is_due(self, job: Job) -> bool:
        """Nobody is running it: queued, or its runner's claim expired."""
        if job.status is JobStatus.QUEUED:
            return True
        return job.status is JobStatus.IN_PROGRESS and job.claim_expires_at <= self.clock()

    async def content(self, job_id: str, variant: str = "video") -> tuple[MediaBlob | None, str | None]:
        """(the stored file to stream, or a URL to redirect to)."""
        if variant not in ("video", "thumbnail"):
            raise InvalidRequest(
                f"'variant' must be 'video' or 'thumbnail' (got {variant!r}).", param="variant"
            )
        job = await self.get(job_id)
        if job.status is not JobStatus.COMPLETED:
            raise VideoNotReady(
                f"Video '{job_id}' is {job.status.value}; its content exists once it is completed.",
                param="video_id",
            )
        media_id = job.result.get(variant)
        if not isinstance(media_id, str):
            raise NotFound(f"Video '{job_id}' has no {variant}.", param="variant")
        redirect = await self.media.redirect(media_id)
        if redirect is not None:
            return None, redirect
        blob = await self.media.open(media_id)
        if blob is None:
            raise NotFound(f"The {variant} of video '{job_id}' is no longer stored.", param="video_id")
        return blob, None

    # --- the runner side ---------------------------------------------------------------------

    async def run(self, job_id: str) -> bool:
        """Claim and run one job to its end; False if another runner holds it (or it is done)."""
        ttl = self.settings.job_claim_seconds
        claim = await self.jobs.claim(
            job_id, now=self.clock(), ttl=ttl, max_attempts=self.settings.job_attempts
        )
        if claim is None:
            return False
        job = await self.jobs.get(job_id)
        if job is None:
            return False
        state = _Progress(claim)
        beat = asyncio.ensure_future(self._heartbeat(state, ttl))
        try:
            request = check_request(
                model=job.params.get("model"),
                prompt=job.params.get("prompt"),
                seconds=job.params.get("seconds"),
                size=job.params.get("size"),
                resolution=job.params.get("resolution"),
                preset=job.params.get("preset"),
            )
            result = await self.leaser.run(request.model, lambda lease: self._generate(request, lease, state))
        except ClaimLost:
            log.info("video %s: claim lost, another runner continues", job_id)
            return True
        except GatewayError as exc:
            await self.jobs.fail(claim, exc.code or "video_generation_failed", exc.message, now=self.clock())
            return True
        except Exception:
            log.exception("video %s crashed", job_id)
            await self.jobs.fail(
                claim, "internal_error", "The gateway failed while generating the video.", now=self.clock()
            )
            return True
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        if not await self.jobs.complete(claim, result, now=self.clock()):
            log.info("video %s finished after its claim was taken over", job_id)
        return True

    async def run_due(self, *, limit: int = 10, deadline: float | None = None) -> int:
        """Run due jobs (queued, or abandoned by a dead runner) one after another; returns how many ran."""
        ran = 0
        for job_id in await self.jobs.due(now=self.clock(), limit=limit):
            if deadline is not None and time.monotonic() >= deadline:
                break
            ran += await self.run(job_id)
        return ran

    async def _heartbeat(self, state: _Progress, ttl: float) -> None:
        while True:
            await asyncio.sleep(max(0.05, ttl / 3))
            if not await self.jobs.progress(state.claim, state.value, now=self.clock(), ttl=ttl):
                state.lost = True
                return

    async def _generate(self, request: VideoRequest, lease: Lease, state: _Progress) -> dict[str, Any]:
        body = video_body(
            request.prompt,
            aspect=VIDEO_ASPECTS[request.size],
            seconds=request.seconds,
            resolution=request.resolution,
            preset=request.preset,
        )
        stream = await self.upstream.chat(lease.token, body)
        decoder = FrameDecoder(assets_url=self.settings.assets_url)
        final: VideoOut | None = None
        started = False
        try:
            chunks = stream.__aiter__()
            while final is None and not decoder.done:
                try:
                    events = decoder.feed(await chunks.__anext__())
                except StopAsyncIteration:
                    events = decoder.flush()
                except UpstreamFailure as broke:
                    raise (Started(broke) if started else broke) from None
                for event in events:
                    if isinstance(event, VideoOut):
                        started = True
                        if event.url and (event.progress >= 100 or is_video_url(event.url)):
                            final = event
                            break
                        await self._progress(state, min(event.progress, 99))
                    elif isinstance(event, Fault):
                        failure = event.failure or truncated_stream(event.error.message)
                        raise Started(failure) if started else failure
        finally:
            await stream.aclose()
        if final is None:
            raise (
                Started(truncated_stream("the video stream ended without a video"))
                if started
                else empty_stream()
            )
        if final.moderated:
            raise InvalidRequest(
                "The upstream's moderation blocked the generated video.",
                param="prompt",
                code="content_policy_violation",
            )
        await self._progress(state, 99)
        data, _mime = await self.upstream.download(lease.token, final.url, MAX_VIDEO_BYTES)
        result = {"video": await self.media.put(data, "video/mp4")}
        if final.thumbnail_url:
            try:
                thumb, mime = await self.upstream.download(lease.token, final.thumbnail_url, 16 * 1024 * 1024)
                result["thumbnail"] = await self.media.put(
                    thumb, mime if mime.startswith("image/") else "image/jpeg"
                )
            except (UpstreamFailure, GatewayError) as exc:
                log.info("video thumbnail not kept: %s", exc)
        return result

    async def _progress(self, state: _Progress, value: int) -> None:
        if state.lost:
            raise ClaimLost
        if value <= state.value:
            return
        state.value = value
        ok = await self.jobs.progress(
            state.claim, value, now=self.clock(), ttl=self.settings.job_claim_seconds
        )
        if not ok:
            state.lost = True
            raise ClaimLost


class _Progress:
    __slots__ = ("claim", "lost", "value")

    def __init__(self, claim: JobClaim) -> None:
        self.claim = claim
        self.value = 0
        self.lost = False


def _choices(limits: dict[str, object], key: str) -> tuple[Any, ...]:
    value = limits.get(key)
    return tuple(value) if isinstance(value, tuple | list) else ()
