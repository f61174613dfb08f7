"""Quota upkeep on a schedule: `GET|POST /api/cron/quota` (Vercel cron) and `handler` (EventBridge).

The HTTP route wants `Authorization: Bearer <CRON_SECRET>` (compared in constant time; Vercel
sends it when the project has CRON_SECRET). Deliveries may repeat: each account is claimed in
the store before it is refreshed, so a repeat does nothing. A lease never waits on any of this.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.errors import AuthenticationFailed
from core.services.quota import refresh_due
from functions._app import build_app
from functions._http import deps_of, json_response
from functions._wiring import Deps, load_settings

CONCURRENCY = 4
BATCH = 200


def rate_limit_fetcher(deps: Deps) -> Any:
    """The E10 call, one client per process (it follows the event loop it is used on)."""
    from infra.upstream.rate_limits import RateLimitClient

    return deps.lazy("rate_limits", lambda d: RateLimitClient(d.settings, upstream=d.upstream)).fetch


def bearer_matches(request: Request, secret: str | None) -> bool:
    if not secret:
        return False
    auth = request.headers.get("authorization", "")
    presented = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    return hmac.compare_digest(presented.encode(), secret.encode())


async def run_quota_upkeep(deps: Deps) -> dict[str, object]:
    report = await refresh_due(
        deps.store,
        rate_limit_fetcher(deps),
        deps.clock(),
        limit=BATCH,
        concurrency=CONCURRENCY,  # type: ignore[arg-type]
    )
    return report.as_dict()


async def cron_quota(request: Request) -> Response:
    deps = deps_of(request)
    if not bearer_matches(request, deps.settings.cron_secret):
        raise AuthenticationFailed(
            "A cron call needs `Authorization: Bearer <CRON_SECRET>`.", code="invalid_cron_secret"
        )
    return json_response(await run_quota_upkeep(deps))


routes = [Route("/api/cron/quota", cron_quota, methods=["GET", "POST"])]
app = build_app(routes)


def handler(event: dict[str, Any] | None = None, context: Any = None) -> dict[str, object]:
    """EventBridge schedule target: a fresh event loop per invocation, so a fresh store client too."""

    async def run() -> dict[str, object]:
        deps = Deps(settings=load_settings())
        try:
            return await run_quota_upkeep(deps)
        finally:
            await deps.aclose()

    return asyncio.run(run())
