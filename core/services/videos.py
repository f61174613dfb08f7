"""Video jobs, the API side: create returns a queued job at once; a runner advances it in steps
(`core/services/video_steps.py`: submit -> poll -> store), whichever runner the deployment has.

    create()   store a QUEUED job owned by the caller (the request was checked before:
               core/services/video_requests.py)
    get/list/delete/content/remix   only the owner's jobs (another owner's id is "not found")
    video(job) the job as its owner sees it (a `Video`; core/transcode/openai_videos.py renders it)
    step/run/run_due   the runner side: `steps` (core/services/video_steps.py) takes them

Ids are random, or derived from the owner and an `Idempotency-Key`, so a repeated create returns
the first job. `expires_at` is when the stored media expire (`media_retention`).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from core.errors import InvalidRequest, NotFound
from core.media import Video, VideoPage
from core.ports import AccountStore, Job, JobStatus, JobStore, MediaBlob, MediaStore, Upstream
from core.services.leasing import Leasing
from core.services.media_lifecycle import MediaGone, expired
from core.services.video_requests import (
    DEFAULT_MODEL,
    DEFAULT_SECONDS,
    DEFAULT_SIZE,
    VideoRequest,
    check_page,
    check_prompt,
    check_request,
    check_variant,
    owner_of,
    request_of,
)
from core.services.video_steps import StepResult, VideoSteps
from core.settings import Settings

# The request's check and its owner come with the service for callers that make jobs.
__all__ = ["VideoNotReady", "VideoRequest", "VideoService", "check_request", "owner_of", "video_of"]
log = logging.getLogger("grokgate.videos")
KIND = "video"


class VideoNotReady(InvalidRequest):
    """The job has no content yet (409, like a conflict with the job's state)."""

    status = 409
    default_code = "video_not_ready"


def video_of(job: Job, retention: float | None = None) -> Video:
    """The job as its owner sees it: its media expire `retention` seconds after it completed."""
    params = job.params
    completed = job.completed_at
    failed = job.status is JobStatus.FAILED
    expires = None
    if completed and retention and job.status is JobStatus.COMPLETED:
        expires = completed + retention
    return Video(
        id=job.id,
        model=params.get("model", DEFAULT_MODEL),
        status=job.status,
        progress=job.progress,
        created_at=job.created_at,
        prompt=params.get("prompt"),
        seconds=int(params.get("seconds", DEFAULT_SECONDS)),
        size=params.get("size", DEFAULT_SIZE),
        completed_at=completed or None,
        expires_at=expires,
        remixed_from=params.get("remixed_from_video_id"),
        error_code=(job.error_code or "video_generation_failed") if failed else "",
        error_message=job.error_message if failed else "",
    )


class VideoService:
    """Args:
    settings: retry budget, lease ttl, job claim ttl and attempts, video timeout, assets URL.
    store: the account pool.
    upstream: E1, E7 and asset downloads.
    media: where finished videos are kept.
    jobs: the shared job store.
    clock: seconds since the epoch.
    leasing: the failover loop (built over `store` when None).
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
        leasing: Leasing | None = None,
    ) -> None:
        self.settings = settings
        self.media = media
        self.jobs = jobs
        self.clock = clock
        self.leasing = leasing or Leasing(settings, store, clock, upstream=upstream)
        self.steps = VideoSteps(settings, store, upstream, media, jobs, self.leasing, clock)

    # --- the API side ------------------------------------------------------------------------

    def video(self, job: Job) -> Video:
        return video_of(job, self.settings.media_retention)

    async def create(
        self,
        request: VideoRequest,
        *,
        owner: str = "",
        idempotency_key: str | None = None,
        remixed_from: str | None = None,
    ) -> Job:
        now = self.clock()
        if idempotency_key:
            digest = hashlib.sha256(f"{owner}\0{idempotency_key}".encode()).hexdigest()[:32]
            job_id = "video_" + digest
        else:
            job_id = "video_" + secrets.token_hex(16)
        params = request.params()
        if remixed_from:
            params["remixed_from_video_id"] = remixed_from
        job = Job(
            id=job_id,
            kind=KIND,
            status=JobStatus.QUEUED,
            params=params,
            created_at=now,
            updated_at=now,
            owner=owner,
        )
        return await self.jobs.create(job)

    async def get(self, job_id: str, owner: str | None = None) -> Job:
        job = await self.jobs.get(job_id) if job_id.startswith("video_") else None
        if job is None or job.kind != KIND or (owner is not None and job.owner != owner):
            raise NotFound(f"No video with id '{job_id}'.", param="video_id", code="video_not_found")
        return job

    async def list(self, owner: str, *, after: str | None, limit: Any, order: Any) -> VideoPage:
        """A page of the owner's videos, after the id `after` in `order` of creation."""
        count, order = check_page(limit, order)
        jobs = await self.jobs.list(owner, after=after or None, limit=count + 1, order=order)
        page = [j for j in jobs if j.kind == KIND][:count]
        return VideoPage(tuple(self.video(j) for j in page), has_more=len(jobs) > count)

    async def delete(self, job_id: str, owner: str) -> Job:
        """Forget the job and remove its stored media; returns the job that was."""
        job = await self.get(job_id, owner)
        await self.jobs.delete(job.id)
        for media_id in job.result.values():
            remover = getattr(self.media, "delete", None)
            if remover is not None and isinstance(media_id, str):
                await remover(media_id)
        return job

    async def remix(self, job_id: str, prompt: Any, owner: str) -> Job:
        """A new video from a completed one: its settings, a new prompt (the upstream has no edit of
        a finished video, so the remix is generated anew), `remixed_from_video_id` set."""
        source = await self.get(job_id, owner)
        if source.status is not JobStatus.COMPLETED:
            raise VideoNotReady(
                f"Video '{job_id}' is {source.status.value}; only a completed video can be remixed.",
                param="video_id",
            )
        request = replace(request_of(source), prompt=check_prompt(prompt))
        return await self.create(request, owner=owner, remixed_from=source.id)

    def is_due(self, job: Job) -> bool:
        """Nobody is running it: queued, or its runner's claim expired / its next step is due."""
        if job.status is JobStatus.QUEUED:
            return True
        return job.status is JobStatus.IN_PROGRESS and job.claim_expires_at <= self.clock()

    async def content(
        self, job_id: str, variant: str = "video", owner: str | None = None
    ) -> tuple[MediaBlob | None, str | None]:
        """(the stored file to stream, or a URL to redirect to)."""
        check_variant(variant)
        job = await self.get(job_id, owner)
        if job.status is not JobStatus.COMPLETED:
            raise VideoNotReady(
                f"Video '{job_id}' is {job.status.value}; its content exists once it is completed.",
                param="video_id",
            )
        media_id = job.result.get(variant)
        if not isinstance(media_id, str):
            raise NotFound(f"Video '{job_id}' has no {variant}.", param="variant")
        if expired(job.completed_at or 0.0, now=self.clock(), retention=self.settings.media_retention):
            raise MediaGone(f"The {variant} of video '{job_id}' expired.", param="video_id")
        redirect = await self.media.redirect(media_id)
        if redirect is not None:
            return None, redirect
        blob = await self.media.open(media_id)
        if blob is None:
            raise MediaGone(f"The {variant} of video '{job_id}' is no longer stored.", param="video_id")
        return blob, None

    # --- the runner side (core/services/video_steps.py) ------------------------------------

    async def step(self, job_id: str, *, deadline: float | None = None) -> StepResult:
        return await self.steps.step(job_id, deadline=deadline)

    async def run(self, job_id: str) -> bool:
        return await self.steps.run(job_id)

    async def run_due(self, *, limit: int = 10, deadline: float | None = None) -> int:
        return await self.steps.run_due(limit=limit, deadline=deadline)
