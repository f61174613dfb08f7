"""The scheduled video worker (runner `cron`): advance due video jobs step by step.

Three entries, one job: `handler(event, context)` for an AWS schedule (EventBridge: no HTTP),
`GET|POST /cron/video-worker` for Vercel cron, which must carry `Authorization: Bearer
<CRON_SECRET>` (or the admin key), and `python -m functions.video_worker` for any other scheduler
(a crontab, a Kubernetes CronJob). Each run claims due jobs one by one (a claim is atomic, so
overlapping runs never run a job twice), takes each job's steps while the next one is due at once
(submit, then store), leaves a job that waits for the upstream to the next run, and stops starting
work when its time budget ends. A run killed mid-step loses nothing: the job's claim expires and
the next run repeats that step from the job's recorded state, never sending E1 a second time.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.errors import PermissionDenied
from functions._app import build_app, key_matches, presented_key
from functions._http import deps_of, json_response
from functions._wiring import Deps, get_deps, load_settings

DEFAULT_BUDGET = 240.0  # seconds to keep starting jobs; a started job may run past it
MARGIN = 30.0


async def advance(deps: Deps, *, budget: float = DEFAULT_BUDGET, limit: int = 20) -> int:
    """Run due jobs until `budget` seconds have passed; returns how many ran."""
    return await deps.video_service.run_due(limit=limit, deadline=time.monotonic() + budget)


async def cron(request: Request) -> Response:
    deps = deps_of(request)
    secrets_ = [s for s in (deps.settings.cron_secret, deps.settings.admin_key) if s]
    key = presented_key(dict(request.scope["headers"]))
    if not secrets_ or not key or not key_matches(key, secrets_):
        raise PermissionDenied("The video worker needs `Authorization: Bearer <CRON_SECRET>`.")
    ran = await advance(deps)
    return json_response({"ran": ran})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """AWS scheduled entry: run due jobs within the remaining invocation time."""
    remaining = DEFAULT_BUDGET + MARGIN
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        remaining = context.get_remaining_time_in_millis() / 1000
    ran = asyncio.run(advance(get_deps(), budget=max(1.0, remaining - MARGIN)))
    return {"ran": ran}


routes = [Route("/cron/video-worker", cron, methods=["GET", "POST"])]
app = build_app(routes)


def main() -> None:
    """One run from the command line, with a fresh event loop and clients."""

    async def run() -> int:
        deps = Deps(settings=load_settings())
        try:
            return await advance(deps)
        finally:
            await deps.aclose()

    print(json.dumps({"ran": asyncio.run(run())}))


if __name__ == "__main__":
    main()
