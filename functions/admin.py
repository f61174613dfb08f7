"""The admin deployable: the JSON API `/admin/api/…` behind the admin key (`Authorization: Bearer`
or `x-api-key`, or a console session cookie with its CSRF token), and the console under /admin
(functions/_console.py).

GET    /admin/api/accounts               list: ?status= &tier= &tag= &q= &cursor= &limit= (tokens masked)
POST   /admin/api/accounts/import        lines or JSON (tier, note, tags); ?tier= default tier (the
                                         operator's); without a tier, detected from the upstream
                                         unless ?detect=false
GET    /admin/api/accounts/export        every account with its token (import-compatible JSON; masked
                                         for a console session)
GET    /admin/api/accounts/{id}          one account (token masked)
PATCH  /admin/api/accounts/{id}          {"tier": "super", "note": "...", "tags": ["..."]}, any subset;
                                         "tier": "auto" hands the tier back to detection
DELETE /admin/api/accounts/{id}          remove
POST   /admin/api/accounts/{id}/disable  {"reason": "..."} optional
POST   /admin/api/accounts/{id}/enable   back to active (clears cooling and the reason)
POST   /admin/api/accounts/{id}/reset    reset cooling: the same as enable, for a cooling account
POST   /admin/api/accounts/{id}/refresh  refresh its quota windows now (at most every 300 s)
POST   /admin/api/accounts/{id}/upkeep   accept the ToS, set a birth date, enable NSFW (E16-E19):
                                         {"steps": ["tos", "birth_date", "nsfw"], "birth_date":
                                         "1990-06-14"}, both optional; the result is kept as the
                                         account's `upkeep` (shown by GET /admin/api/accounts/{id})
"""

from __future__ import annotations

import re

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.accounts import AccountStatus, AccountUpdate, TierSource
from core.catalog import Tier
from core.errors import InvalidRequest, NotFound
from core.services.accounts import import_accounts, update_account
from core.services.quota import refresh_account
from core.services.upkeep import DEFAULT_BIRTH_DATE, STEPS, run_upkeep, upkeep_state
from functions import admin_keys
from functions._app import build_app
from functions._console import routes as console_routes
from functions._console_jobs import routes as jobs_routes
from functions._console_session import admin_deps
from functions._console_settings import routes as settings_routes
from functions._http import json_response, read_body
from functions._wiring import Deps

MAX_PAGE = 500
MAX_IMPORT_BYTES = 8 * 1024 * 1024


def _enum(
    kind: type[Tier] | type[AccountStatus], value: str | None, param: str
) -> Tier | AccountStatus | None:
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(m.value for m in kind)
        raise InvalidRequest(f"`{param}` must be one of: {choices}.", param=param) from None


async def list_accounts(request: Request) -> Response:
    deps = await admin_deps(request)
    q = request.query_params
    try:
        limit = min(MAX_PAGE, max(1, int(q.get("limit", "100"))))
    except ValueError:
        raise InvalidRequest("`limit` must be an integer.", param="limit") from None
    page = await deps.store.list(
        status=_enum(AccountStatus, q.get("status"), "status"),  # type: ignore[arg-type]
        tier=_enum(Tier, q.get("tier"), "tier"),  # type: ignore[arg-type]
        tag=q.get("tag") or None,
        text=q.get("q") or None,
        cursor=q.get("cursor") or None,
        limit=limit,
    )
    return json_response({"data": [a.public() for a in page.items], "next_cursor": page.next_cursor})


async def import_route(request: Request) -> Response:
    deps = await admin_deps(request)
    body = await read_body(request, min(MAX_IMPORT_BYTES, deps.settings.max_body_bytes))
    raw_tier = request.query_params.get("tier")
    tier = None if raw_tier == "auto" else _enum(Tier, raw_tier, "tier")
    detect = request.query_params.get("detect", "true").lower() not in ("false", "0", "no")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("The import must be UTF-8 text or JSON.") from None
    report = await import_accounts(
        deps.store,
        text,
        deps.clock(),
        tier,  # type: ignore[arg-type]
        deps.rate_limits.fetch if detect else None,
    )
    return json_response(
        {
            "added": report.added,
            "skipped": report.skipped,
            "invalid": report.invalid,
            "tiers": report.tiers,
            "unchecked": report.unchecked,
        }
    )


async def export_route(request: Request) -> Response:
    deps = await admin_deps(request)
    rows: list[dict[str, object]] = []
    cursor = None
    while True:
        page = await deps.store.list(cursor=cursor, limit=MAX_PAGE)
        rows += [
            {
                # A console session never receives a full token: its export is an inventory.
                "token": a.masked if request.state.console else a.token,
                "id": a.id,
                "tier": a.tier.value,
                "note": a.note,
                "tags": list(a.tags),
                "status": a.status.value,
            }
            for a in page.items
        ]
        cursor = page.next_cursor
        if cursor is None:
            break
    return json_response({"accounts": rows}, headers={"cache-control": "no-store"})


async def _found(deps: Deps, account_id: str) -> Response:
    account = await deps.store.get(account_id)
    if account is None:
        raise NotFound(f"No account `{account_id}`.", param="id", code="account_not_found")
    return json_response(account.public())


async def get_account(request: Request) -> Response:
    deps = await admin_deps(request)
    account_id = request.path_params["account_id"]
    account = await deps.store.get(account_id)
    if account is None:
        raise NotFound(f"No account `{account_id}`.", param="id", code="account_not_found")
    return json_response(
        {**account.public(), "upkeep": await upkeep_state(deps.records, account_id, deps.clock())}
    )


def upkeep_request(body: object) -> tuple[list[str], str]:
    """`{"steps"?, "birth_date"?}` -> (steps, date); a wrong type or value is a 400 naming the field."""
    if not isinstance(body, dict):
        raise InvalidRequest('The body must be a JSON object, e.g. {"steps": ["tos", "nsfw"]}.')
    steps = body.get("steps", list(STEPS))
    if not isinstance(steps, list) or not steps or any(s not in STEPS for s in steps):
        raise InvalidRequest(f"`steps` must be a non-empty list of: {', '.join(STEPS)}.", param="steps")
    date = body.get("birth_date", DEFAULT_BIRTH_DATE)
    if not isinstance(date, str) or not _DATE.fullmatch(date):
        raise InvalidRequest("`birth_date` must be a date, YYYY-MM-DD.", param="birth_date")
    return [str(s) for s in steps], date


async def upkeep(request: Request) -> Response:
    deps = await admin_deps(request)
    account_id = request.path_params["account_id"]
    raw = await read_body(request)
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise InvalidRequest('The body must be JSON, e.g. {"steps": ["tos"]}.') from None
    steps, date = upkeep_request(body)
    account = await deps.store.get(account_id)
    if account is None:
        raise NotFound(f"No account `{account_id}`.", param="id", code="account_not_found")
    state = await run_upkeep(
        deps.upkeep_calls,
        deps.records,
        account_id,
        account.token,
        deps.clock(),
        steps=steps,
        birth_date=date,
    )
    return json_response({"id": account_id, "upkeep": state})


async def patch_account(request: Request) -> Response:
    deps = await admin_deps(request)
    account_id = request.path_params["account_id"]
    try:
        body = orjson.loads(await read_body(request))
    except orjson.JSONDecodeError:
        raise InvalidRequest('The body must be JSON, e.g. {"tier": "super"}.') from None
    if not isinstance(body, dict):
        raise InvalidRequest('The body must be a JSON object, e.g. {"tier": "super"}.')
    await update_account(deps.store, account_id, account_update(body))
    return await _found(deps, account_id)


def account_update(body: dict[str, object]) -> AccountUpdate:
    """`{"tier"?, "note"?, "tags"?}` as an update; a wrong type or value is a 400 naming the field."""
    tier, source = None, None
    if "tier" in body:
        value = body["tier"]
        if value == "auto":
            source = TierSource.ASSUMED  # the tier stays until the next refresh detects one
        elif not isinstance(value, str) or value not in {t.value for t in Tier}:
            raise InvalidRequest("`tier` must be one of: basic, super, heavy, auto.", param="tier")
        else:
            tier = Tier(value)
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 500):
        raise InvalidRequest("`note` must be a string of at most 500 characters.", param="note")
    tags = body.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        raise InvalidRequest("`tags` must be a list of strings.", param="tags")
    if tier is None and source is None and note is None and tags is None:
        raise InvalidRequest("Nothing to change: give `tier`, `note` or `tags`.")
    return AccountUpdate(tier, source, note, tuple(tags) if tags is not None else None)


async def remove_account(request: Request) -> Response:
    deps = await admin_deps(request)
    account_id = request.path_params["account_id"]
    if not await deps.store.remove(account_id):
        raise NotFound(f"No account `{account_id}`.", param="id", code="account_not_found")
    return json_response({"id": account_id, "deleted": True})


async def _reason(request: Request) -> str:
    raw = await request.body()
    if not raw.strip():
        return ""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest('The body must be JSON, e.g. {"reason": "..."}.') from None
    reason = body.get("reason", "") if isinstance(body, dict) else ""
    return str(reason)[:500]


async def _set(request: Request, status: AccountStatus, default_reason: str) -> Response:
    deps = await admin_deps(request)
    account_id = request.path_params["account_id"]
    reason = (await _reason(request)) or default_reason if status is not AccountStatus.ACTIVE else ""
    if not await deps.store.set_status(account_id, status, reason, deps.clock()):
        raise NotFound(f"No account `{account_id}`.", param="id", code="account_not_found")
    return await _found(deps, account_id)


async def disable(request: Request) -> Response:
    return await _set(request, AccountStatus.DISABLED, "disabled by an operator")


async def enable(request: Request) -> Response:
    return await _set(request, AccountStatus.ACTIVE, "")


async def reset(request: Request) -> Response:
    return await _set(request, AccountStatus.ACTIVE, "")


async def refresh(request: Request) -> Response:
    deps = await admin_deps(request)
    account_id = request.path_params["account_id"]
    account = await deps.store.get(account_id)
    if account is None:
        raise NotFound(f"No account `{account_id}`.", param="id", code="account_not_found")
    result = await refresh_account(
        deps.store,  # type: ignore[arg-type]
        deps.rate_limits.fetch,
        account,
        deps.clock(),
        intervals=deps.settings.refresh_intervals(),
    )
    fresh = await deps.store.get(account_id)
    return json_response({"result": result, "account": fresh.public() if fresh else None})


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
PREFIX = "/admin/api/accounts"
routes = [
    Route(PREFIX, list_accounts, methods=["GET"]),
    Route(f"{PREFIX}/import", import_route, methods=["POST"]),
    Route(f"{PREFIX}/export", export_route, methods=["GET"]),
    Route(PREFIX + "/{account_id}", get_account, methods=["GET"]),
    Route(PREFIX + "/{account_id}", patch_account, methods=["PATCH"]),
    Route(PREFIX + "/{account_id}", remove_account, methods=["DELETE"]),
    Route(PREFIX + "/{account_id}/disable", disable, methods=["POST"]),
    Route(PREFIX + "/{account_id}/enable", enable, methods=["POST"]),
    Route(PREFIX + "/{account_id}/reset", reset, methods=["POST"]),
    Route(PREFIX + "/{account_id}/refresh", refresh, methods=["POST"]),
    Route(PREFIX + "/{account_id}/upkeep", upkeep, methods=["POST"]),
]
routes += admin_keys.routes
routes += console_routes + settings_routes + jobs_routes
app = build_app(routes)

from functions._lambda import lambda_handler  # noqa: E402

handler = lambda_handler(app)
