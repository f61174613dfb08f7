"""The video state machine's task handlers (runner `stepfunctions`; infra/aws/video.asl.json).

Each task is a plain Lambda handler over the same service code as every other runner: it takes
the job's next step (`VideoService.step`) and returns where the job stands, which the machine's
Choice states read:

    {"job_id": "...", "status": "queued|in_progress|completed|failed|busy", "stage": "poll|store|...",
     "wait": seconds until the next step}

`submit`, `poll` and `store` all take "the next step", so a task Step Functions retries, or a
state entered twice, repeats nothing that was done (a submitted job is never submitted again).
`fail` is the Catch target: it fails the job with the error the machine caught.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

from core.services.video_steps import StepResult
from functions._wiring import Deps, load_settings

MARGIN = 20.0  # seconds of a task's invocation kept for writing the step's end


def _budget(context: Any) -> float | None:
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        return time.monotonic() + max(1.0, context.get_remaining_time_in_millis() / 1000 - MARGIN)
    return None


async def _with_deps(work: Any) -> Any:
    deps = Deps(settings=load_settings())
    try:
        return await work(deps)
    finally:
        await deps.aclose()


def output(result: StepResult) -> dict[str, Any]:
    """Where the job stands, as the machine's Choice and Wait states read it."""
    wait_seconds = math.ceil(result.wait)  # a Wait state takes whole seconds
    if result.status is None:  # another runner holds the job: look again once its claim may end
        wait_seconds = max(1, wait_seconds)
    return {
        "job_id": result.job_id,
        "status": result.status.value if result.status else "busy",
        "stage": result.stage,
        "wait": round(result.wait, 3),
        "wait_seconds": wait_seconds,
    }


def _step(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job_id = str(event["job_id"])
    deadline = _budget(context)

    async def work(deps: Deps) -> StepResult:
        return await deps.video_service.step(job_id, deadline=deadline)

    return output(asyncio.run(_with_deps(work)))


def submit(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _step(event, context)


def poll(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _step(event, context)


def store(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _step(event, context)


def fail(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Catch target: `{"job_id", "error": {"Error", "Cause"}}` -> the job FAILED with that reason."""
    job_id = str(event["job_id"])
    error = event.get("error") or {}
    cause = str(error.get("Cause") or "")
    try:
        message = str(json.loads(cause).get("errorMessage") or cause)
    except (ValueError, AttributeError):
        message = cause
    code = str(error.get("Error") or "video_generation_failed")
    text = message[:500] or "The video state machine failed."

    async def work(deps: Deps) -> dict[str, Any]:
        failed = await deps.video_service.steps.fail(job_id, "video_generation_failed", f"{code}: {text}")
        return {"job_id": job_id, "status": "failed", "failed_now": failed}

    out: dict[str, Any] = asyncio.run(_with_deps(work))
    return out
