"""The runner side of video jobs: a job advances in steps, and any runner may take the next one.

    submit   lease an account, record it in the job *before* E1 is sent (so no later runner ever
             sends a second generation), read the stream: F10 progress -> job progress, the
             upstream's videoId recorded as soon as it is named; the final URL -> store. A
             refused E1 fails over to another account within the retry budget; a stream that
             breaks (or a step budget that ends) after the upstream named the video -> poll.
    poll     list the account's assets (E7) for the video; found -> store, else wait (doubling
             from `video_poll_seconds` up to a minute) and poll again
    store    download the video and its thumbnail with the account's cookie -> MediaStore -> done

Each step claims the job (one runner wins), heartbeats while it works, and ends by releasing the
job with its next step due (`JobStore.advance`), completing it, or failing it with the reason.
A runner killed mid-step stops heartbeating; its claim expires and the next runner repeats that
step from the job's recorded state. A job older than `video_timeout` fails.

    step(id)   one step of one job (a Step Functions task)
    run(id)    steps until the job ends (the local process's inline runner)
    run_due()  what the scheduled worker calls: step due jobs until its deadline
    fail(id)   fail a job from outside its steps (the state machine's Catch)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.accounts import Lease
from core.errors import GatewayError, InvalidRequest
from core.events import Fault, VideoOut
from core.ports import AccountStore, Job, JobClaim, JobStatus, JobStore, MediaStore, Upstream
from core.protocol.classify import UpstreamFailure, empty_stream, truncated_stream
from core.protocol.frames import FrameDecoder
from core.protocol.media import (
    VIDEO_ASPECTS,
    absolute,
    find_video_asset,
    image_post_body,
    image_video_body,
    is_video_url,
    next_page_token,
    post_id_of,
    video_body,
)
from core.services.leasing import Leasing, Started
from core.services.video_requests import VideoRequest, request_of
from core.settings import Settings

log = logging.getLogger("grokgate.videos")
SUBMIT, POLL, STORE = "submit", "poll", "store"
MAX_VIDEO_BYTES = 512 * 1024 * 1024
MAX_POLL_WAIT = 60.0
POLL_PAGES = 5  # E7 pages read per poll (50 assets each)
TERMINAL = (JobStatus.COMPLETED, JobStatus.FAILED)


class ClaimLost(Exception):
    """Another runner took the job over (our claim expired); stop without writing."""


class JobFailed(GatewayError):
    status = 502
    default_code = "video_generation_failed"


@dataclass(frozen=True, slots=True)
class StepResult:
    """Where a job stands after one step: `status` None when another runner holds it; `stage`
    is the next step's; `wait` the seconds until it is due."""

    job_id: str
    status: JobStatus | None
    stage: str = ""
    wait: float = 0.0

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


class _Work:
    __slots__ = ("claim", "lost", "progress", "state")

    def __init__(self, claim: JobClaim, progress: int, state: dict[str, Any]) -> None:
        self.claim = claim
        self.progress = progress
        self.state = state
        self.lost = False


@dataclass(slots=True)
class VideoSteps:
    """The runner side of the video service: its settings, ports and failover loop."""

    settings: Settings
    store: AccountStore
    upstream: Upstream
    media: MediaStore
    jobs: JobStore
    leasing: Leasing
    clock: Callable[[], float]

    async def step(self, job_id: str, *, deadline: float | None = None) -> StepResult:
        """Claim the job and take its next step; `deadline` (monotonic) bounds a submit's reading."""
        ttl = self.settings.job_claim_seconds
        now = self.clock()
        claim = await self.jobs.claim(job_id, now=now, ttl=ttl, max_attempts=self.settings.job_attempts)
        job = await self.jobs.get(job_id)
        if job is None:
            return StepResult(job_id, JobStatus.FAILED)
        if claim is None:
            if job.status in TERMINAL or job.status is JobStatus.QUEUED:
                return StepResult(job_id, job.status)
            return StepResult(
                job_id, None, job.state.get("stage", SUBMIT), max(0.0, job.claim_expires_at - now)
            )
        work = _Work(claim, job.progress, dict(job.state))
        beat = asyncio.ensure_future(self._heartbeat(work, ttl))
        try:
            if now - job.created_at > self.settings.video_timeout:
                raise JobFailed(
                    f"The video did not finish within {self.settings.video_timeout:.0f} seconds.",
                    code="video_timeout",
                )
            stage = work.state.get("stage", SUBMIT)
            if stage == SUBMIT:
                return await self._submit(job, work, deadline)
            if stage == POLL:
                return await self._poll(job, work)
            return await self._store(job, work)
        except ClaimLost:
            log.info("video %s: claim lost, another runner continues", job_id)
            return StepResult(job_id, None, work.state.get("stage", SUBMIT), ttl)
        except GatewayError as exc:
            await self.jobs.fail(claim, exc.code or "video_generation_failed", exc.message, now=self.clock())
            return StepResult(job_id, JobStatus.FAILED)
        except Exception:
            log.exception("video %s crashed", job_id)
            await self.jobs.fail(
                claim, "internal_error", "The gateway failed while generating the video.", now=self.clock()
            )
            return StepResult(job_id, JobStatus.FAILED)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def run(self, job_id: str) -> bool:
        """Step one job until it ends (waiting between polls); False if another runner holds it."""
        while True:
            result = await self.step(job_id)
            if result.status is None:
                return False
            if result.done or result.status is JobStatus.QUEUED:
                return True
            if result.wait > 0:
                await asyncio.sleep(result.wait)

    async def run_due(self, *, limit: int = 10, deadline: float | None = None) -> int:
        """Advance due jobs (queued, released between steps, or abandoned by a dead runner) within
        the deadline: each job's steps while the next is due at once; later ones are left for the
        next run. Returns how many jobs were advanced."""
        ran = 0
        for job_id in await self.jobs.due(now=self.clock(), limit=limit):
            if deadline is not None and time.monotonic() >= deadline:
                break
            advanced = False
            while deadline is None or time.monotonic() < deadline:
                result = await self.step(job_id, deadline=deadline)
                advanced = advanced or result.status is not None
                if result.status is None or result.done or result.wait > 0:
                    break
            ran += advanced
        return ran

    async def fail(self, job_id: str, code: str, message: str) -> bool:
        """Fail a job from outside its steps (a state machine's Catch): claims it first."""
        claim = await self.jobs.claim(
            job_id, now=self.clock(), ttl=self.settings.job_claim_seconds, max_attempts=1_000_000
        )
        return claim is not None and await self.jobs.fail(claim, code, message, now=self.clock())

    # --- steps ---------------------------------------------------------------------------------

    async def _next(self, job: Job, work: _Work, stage: str, wait: float) -> StepResult:
        work.state["stage"] = stage
        now = self.clock()
        if not await self.jobs.advance(
            work.claim, work.state, progress=work.progress, now=now, due_at=now + wait
        ):
            raise ClaimLost
        return StepResult(job.id, JobStatus.IN_PROGRESS, stage, wait)

    async def _submit(self, job: Job, work: _Work, deadline: float | None) -> StepResult:
        if work.state.get("submitted"):
            # A runner sent E1 and died (or a task was delivered twice): the upstream may be making
            # the video already. Never send it again; look for it instead.
            return await self._next(job, work, POLL, 0.0)
        request = request_of(job)
        found = await self.leasing.run(
            request.model, lambda lease: self._generate(request, lease, work, deadline)
        )
        if found is None:
            work.state["polls"] = 0
            return await self._next(job, work, POLL, self.settings.video_poll_seconds)
        work.state.update(found)
        return await self._next(job, work, STORE, 0.0)

    async def _generate(
        self, request: VideoRequest, lease: Lease, work: _Work, deadline: float | None
    ) -> dict[str, str] | None:
        if request.reference:
            body = await self._image_video_body(request, lease)
        else:
            body = video_body(
                request.prompt,
                aspect=VIDEO_ASPECTS[request.size],
                seconds=request.seconds,
                resolution=request.resolution,
                preset=request.preset,
            )
        # Recorded before the request leaves: from here on no runner sends this job's E1 again.
        await self._save(
            work,
            {
                "stage": SUBMIT,
                "submitted": True,
                "account_id": lease.account_id,
                "submitted_at": self.clock(),
                "video_id": "",
            },
        )
        try:
            stream = await self.upstream.chat(lease.token, body)
        except UpstreamFailure:
            await self._save(work, {"stage": SUBMIT, "submitted": False})  # refused: nothing is being made
            raise
        decoder = FrameDecoder(assets_url=self.settings.assets_url)
        final: VideoOut | None = None
        started = False
        try:
            chunks = stream.__aiter__()
            while final is None and not decoder.done:
                if deadline is not None and work.state.get("video_id") and time.monotonic() >= deadline:
                    return None  # the step's budget is spent; the upstream goes on, a poll finds it
                try:
                    events = decoder.feed(await chunks.__anext__())
                except StopAsyncIteration:
                    events = decoder.flush()
                except UpstreamFailure as broke:
                    if work.state.get("video_id"):
                        log.info("video stream broke after the upstream named the video; polling")
                        return None
                    raise (Started(broke) if started else broke) from None
                for event in events:
                    if isinstance(event, VideoOut):
                        started = True
                        if event.video_id and not work.state.get("video_id"):
                            await self._save(
                                work, {**work.state, "video_id": event.video_id, "post_id": event.post_id}
                            )
                        if event.url and (event.progress >= 100 or is_video_url(event.url)):
                            final = event
                            break
                        await self._progress(work, min(event.progress, 99))
                    elif isinstance(event, Fault):
                        failure = event.failure or truncated_stream(event.error.message)
                        raise Started(failure) if started else failure
        finally:
            await stream.aclose()
        if final is None:
            if work.state.get("video_id"):
                return None
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
        await self._progress(work, 99)
        return {"video_url": final.url, "thumbnail_url": final.thumbnail_url}

    async def _image_video_body(self, request: VideoRequest, lease: Lease) -> dict[str, Any]:
        """Image-to-video ([v2]): the image uploaded to this account (E5), an image post made of
        it (E13), then the body that animates it. Nothing is generated yet, so a failure here fails
        over like a refused E1."""
        blob = await self.media.open(request.reference)
        if blob is None:
            raise InvalidRequest("The video's reference image is no longer stored.", param="input_reference")
        data = b"".join([chunk async for chunk in blob.chunks])
        name = "reference." + (blob.mime.rsplit("/", 1)[-1] or "png")
        _file_id, uri = await self.upstream.upload_file(lease.token, name, blob.mime, data)
        media_url = absolute(uri, self.settings.assets_url)
        post_id = post_id_of(await self.upstream.media_post(lease.token, image_post_body(media_url)))
        if not post_id:
            raise JobFailed("The upstream made no media post for the reference image.", code="upstream_error")
        return image_video_body(
            request.prompt,
            media_url=media_url,
            post_id=post_id,
            aspect=VIDEO_ASPECTS[request.size],
            seconds=request.seconds,
            resolution=request.resolution,
            preset=request.preset,
        )

    async def _account_token(self, work: _Work) -> str:
        account = await self.store.get(str(work.state.get("account_id", "")))
        if account is None:
            raise JobFailed(
                "The account that made the video is no longer in the pool.", code="account_removed"
            )
        return account.token

    async def _poll(self, job: Job, work: _Work) -> StepResult:
        token = await self._account_token(work)
        polls = int(work.state.get("polls", 0)) + 1
        work.state["polls"] = polls
        wait = min(MAX_POLL_WAIT, self.settings.video_poll_seconds * 2 ** min(polls, 10))
        try:
            found = await self._find(token, work)
        except UpstreamFailure as failure:
            if failure.retryable:
                return await self._next(job, work, POLL, wait)
            raise failure.to_error() from None
        if found is None:
            return await self._next(job, work, POLL, wait)
        work.state["video_url"], work.state["thumbnail_url"] = found
        work.progress = max(work.progress, 99)
        return await self._next(job, work, STORE, 0.0)

    async def _find(self, token: str, work: _Work) -> tuple[str, str] | None:
        """The video among the account's assets, reading up to `POLL_PAGES` pages of E7."""
        page = ""
        for _ in range(POLL_PAGES):
            listing = await self.upstream.list_assets(token, page)
            found = find_video_asset(
                listing,
                video_id=str(work.state.get("video_id") or ""),
                since=float(work.state.get("submitted_at") or 0) - 5.0,
                assets_url=self.settings.assets_url,
            )
            page = next_page_token(listing)
            if found is not None or not page:
                return found
        return None

    async def _store(self, job: Job, work: _Work) -> StepResult:
        token = await self._account_token(work)
        try:
            data, _mime = await self.upstream.download(token, str(work.state["video_url"]), MAX_VIDEO_BYTES)
        except UpstreamFailure as failure:
            if failure.retryable:
                return await self._next(job, work, STORE, self.settings.video_poll_seconds)
            raise failure.to_error() from None
        result = {"video": await self.media.put(data, "video/mp4")}
        thumb_url = str(work.state.get("thumbnail_url") or "")
        if thumb_url:
            try:
                thumb, mime = await self.upstream.download(token, thumb_url, 16 * 1024 * 1024)
                result["thumbnail"] = await self.media.put(
                    thumb, mime if mime.startswith("image/") else "image/jpeg"
                )
            except (UpstreamFailure, GatewayError) as exc:
                log.info("video thumbnail not kept: %s", exc)
        if not await self.jobs.complete(work.claim, result, now=self.clock()):
            log.info("video %s finished after its claim was taken over", job.id)
            return StepResult(job.id, None, STORE, 0.0)
        return StepResult(job.id, JobStatus.COMPLETED)

    # --- claim upkeep --------------------------------------------------------------------------

    async def _heartbeat(self, work: _Work, ttl: float) -> None:
        while True:
            await asyncio.sleep(max(0.05, ttl / 3))
            if not await self.jobs.progress(work.claim, work.progress, now=self.clock(), ttl=ttl):
                work.lost = True
                return

    async def _save(self, work: _Work, state: dict[str, Any]) -> None:
        if work.lost:
            raise ClaimLost
        work.state = state
        ok = await self.jobs.progress(
            work.claim, work.progress, now=self.clock(), ttl=self.settings.job_claim_seconds, state=state
        )
        if not ok:
            work.lost = True
            raise ClaimLost

    async def _progress(self, work: _Work, value: int) -> None:
        if work.lost:
            raise ClaimLost
        if value <= work.progress:
            return
        work.progress = value
        ok = await self.jobs.progress(
            work.claim, value, now=self.clock(), ttl=self.settings.job_claim_seconds
        )
        if not ok:
            work.lost = True
            raise ClaimLost
