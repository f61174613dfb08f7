"""Upkeep on a schedule: `GET|POST /api/cron/quota` (quota windows) and `/api/cron/clearance`
(Cloudflare clearance per egress and the statsig inputs), as Vercel crons, and `handler`
(EventBridge: `{"job": "clearance"}` runs the clearance upkeep, anything else the quota one).

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


def bearer_matches(request: Request, secret: str | None) -> bool:
    if not secret:
        return False
    auth = request.headers.get("authorization", "")
    presented = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    return hmac.compare_digest(presented.encode(), secret.encode())


async def run_quota_upkeep(deps: Deps) -> dict[str, object]:
    """Refresh due quotas, then move every running console batch on by one step."""
    from core.services import batches

    await deps.refresh_overrides()
    report = await refresh_due(
        deps.store,
        deps.rate_limits.fetch,
        deps.clock(),
        limit=BATCH,
        concurrency=CONCURRENCY,
        intervals=deps.settings.refresh_intervals(),  # type: ignore[arg-type]
    )
    fetch = deps.rate_limits.fetch
    actions = batches.actions_for(
        deps.store, fetch, deps.settings.refresh_intervals(), deps.upkeep_calls, deps.records
    )
    moved = await batches.advance_running(
        deps.records, actions, deps.clock(), concurrency=deps.settings.batch_concurrency
    )
    return {**report.as_dict(), "batches_advanced": moved}


async def run_clearance_upkeep(deps: Deps) -> dict[str, object]:
    """Renew the clearance of every egress that expires within the next interval (idempotent: a
    repeat finds them fresh) and re-scrape the statsig inputs (local mode)."""
    upstream = deps.rest_upstream
    account_ids: list[str] = []
    if any("{account}" in p for p in deps.settings.egress_proxies()):
        page = await deps.store.list(limit=1000)
        account_ids = [a.id for a in page.items]
    report: dict[str, object] = {}
    if upstream.clearance.enabled:
        report["clearance"] = await upstream.clearance.refresh_expiring(
            upstream.pool.all(account_ids), deps.settings.clearance_refresh_within
        )
    else:
        report["clearance"] = {"skipped": "GROKGATE_FLARESOLVERR_URL is not set"}
    if deps.settings.statsig == "local":
        from infra.upstream.statsig import StatsigUnavailable

        try:
            report["statsig"] = {"build": await upstream.statsig.refresh()}
        except StatsigUnavailable as exc:
            report["statsig"] = {"failed": str(exc)}
    return report


def _check_secret(request: Request, deps: Deps) -> None:
    if not bearer_matches(request, deps.settings.cron_secret):
        raise AuthenticationFailed(
            "A cron call needs `Authorization: Bearer <CRON_SECRET>`.", code="invalid_cron_secret"
        )


async def run_media_upkeep(deps: Deps) -> dict[str, object]:
    """Expire stored media after `media_retention` and hold the folder under `media_max_bytes`;
    a bucket whose lifecycle rule expires the files already is left to S3."""
    from core.services.media_lifecycle import SweepReport, sweep

    store: Any = deps.media_store
    settings = deps.settings
    if not settings.media_retention and not settings.media_max_bytes:
        return SweepReport(skipped="no retention or cap").as_dict()
    if not settings.media_max_bytes and await store.expires_by_itself(settings.media_retention):
        return SweepReport(skipped="the bucket's lifecycle rule expires the media").as_dict()
    report = await sweep(
        store, now=deps.clock(), retention=settings.media_retention, max_bytes=settings.media_max_bytes
    )
    return report.as_dict()


async def cron_media(request: Request) -> Response:
    deps = deps_of(request)
    _check_secret(request, deps)
    return json_response(await run_media_upkeep(deps))


async def cron_quota(request: Request) -> Response:
    deps = deps_of(request)
    _check_secret(request, deps)
    return json_response(await run_quota_upkeep(deps))


async def cron_clearance(request: Request) -> Response:
    deps = deps_of(request)
    _check_secret(request, deps)
    return json_response(await run_clearance_upkeep(deps))


routes = [
    Route("/api/cron/quota", cron_quota, methods=["GET", "POST"]),
    Route("/api/cron/clearance", cron_clearance, methods=["GET", "POST"]),
    Route("/api/cron/media", cron_media, methods=["GET", "POST"]),
]
app = build_app(routes)


def handler(event: dict[str, Any] | None = None, context: Any = None) -> dict[str, object]:
    """EventBridge schedule target: a fresh event loop per invocation, so a fresh store client too."""

    async def run() -> dict[str, object]:
        deps = Deps(settings=load_settings())
        try:
            if isinstance(event, dict) and event.get("job") == "clearance":
                return await run_clearance_upkeep(deps)
            if isinstance(event, dict) and event.get("job") == "media":
                return await run_media_upkeep(deps)
            return await run_quota_upkeep(deps)
        finally:
            await deps.aclose()

    return asyncio.run(run())
