"""The scheduled video worker: advance due video jobs (queued, or abandoned by a dead runner).

Two entries, one job: `handler(event, context)` for an AWS schedule (EventBridge: no HTTP), and
`GET|POST /cron/video-worker` for Vercel cron, which must carry `Authorization: Bearer
<CRON_SECRET>` (or the admin key). Each call claims due jobs one by one (a claim is atomic, so
overlapping calls never run a job twice) and stops starting new ones when its time budget ends;
a job cut off by the platform's timeout is claimed again once its claim expires.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.errors import PermissionDenied
from functions._app import build_app, key_matches, presented_key
from functions._http import deps_of, json_response
from functions._wiring import Deps, get_deps
from functions.videos import video_service

DEFAULT_BUDGET = 240.0  # seconds to keep starting jobs; a started job may run past it
MARGIN = 30.0


async def advance(deps: Deps, *, budget: float = DEFAULT_BUDGET, limit: int = 20) -> int:
    """Run due jobs until `budget` seconds have passed; returns how many ran."""
    return await video_service(deps).run_due(limit=limit, deadline=time.monotonic() + budget)


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
