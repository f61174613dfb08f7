"""The admin console under /admin: its page and assets, login and logout, and the console's own
JSON calls (batches, settings, jobs, media). Everything the page shows comes from `/admin/api/…`
with the session cookie; the playground calls the gateway's `/v1` routes with a client key.

GET  /admin                      the page (one HTML shell; the views are JS modules)
GET  /admin/assets/{name}        its CSS and JS, shipped in the package (functions/console/)
POST /admin/login                {"key": "<GROKGATE_ADMIN_KEY>"} -> the session cookie
POST /admin/logout               ends the session (revoked in the store until it expires)
GET  /admin/api/session          the session's CSRF token and expiry
GET  /admin/api/batches          recent batches;  POST {"action", "ids"} starts one
GET  /admin/api/batches/{id}     one batch, after advancing it by one step
POST /admin/api/voice/token      {"account_id", "voice", "personality", "speed"} -> a LiveKit token (E20)
"""

from __future__ import annotations

from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.errors import AuthenticationFailed, InvalidRequest, NotFound
from core.services import batches
from functions._console_session import (
    SESSION_SECONDS,
    admin_deps,
    check_login,
    cookie_header,
    revoke,
    session_of,
)
from functions._http import deps_of, json_response, read_body
from functions._wiring import Deps

ASSETS = Path(__file__).parent / "console"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
PAGE_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data: blob: https:; media-src 'self' blob: https:; "
        "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


async def page(request: Request) -> Response:
    return Response(
        (ASSETS / "index.html").read_bytes(), media_type="text/html; charset=utf-8", headers=PAGE_HEADERS
    )


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    path = ASSETS / name
    if "/" in name or name.startswith(".") or path.suffix not in TYPES or not path.is_file():
        raise NotFound(f"No console asset `{name}`.")
    return Response(
        path.read_bytes(),
        media_type=TYPES[path.suffix],
        headers={"cache-control": "no-cache", "x-content-type-options": "nosniff"},
    )


async def _json(request: Request) -> dict[str, object]:
    raw = await read_body(request)
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidRequest("The body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return body


async def login(request: Request) -> Response:
    deps = deps_of(request)
    body = await _json(request)
    cookie = await check_login(request, deps, body.get("key", ""))  # type: ignore[arg-type]
    response = json_response({"ok": True, "expires_in": SESSION_SECONDS})
    response.headers["set-cookie"] = cookie_header(cookie, request, SESSION_SECONDS)
    return response


async def logout(request: Request) -> Response:
    deps = await admin_deps(request)  # a logout is a change: it needs the CSRF token too
    session = await session_of(request, deps)
    if session is not None:
        await revoke(deps, session)
    response = json_response({"ok": True})
    response.headers["set-cookie"] = cookie_header("", request, 0)
    return response


async def session(request: Request) -> Response:
    deps = deps_of(request)
    current = await session_of(request, deps)
    if current is None:
        raise AuthenticationFailed("No console session: log in.", code="no_console_session")
    settings = deps.settings
    return json_response(
        {"csrf": current.csrf, "expires_at": current.expires_at, "open_gateway": not settings.api_keys},
        headers={"cache-control": "no-store"},
    )


def _actions(deps: Deps) -> dict[str, batches.Action]:
    return batches.actions_for(
        deps.store,
        deps.rate_limits.fetch,
        deps.settings.refresh_intervals(),
        deps.upkeep_calls,
        deps.records,
    )


async def start_batch(request: Request) -> Response:
    deps = await admin_deps(request)
    body = await _json(request)
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidRequest("`ids` must be a list of account ids.", param="ids")
    batch = await batches.create(deps.records, str(body.get("action", "")), ids, deps.clock())
    return json_response(batches.summary(batch), 201)


async def list_batches(request: Request) -> Response:
    deps = await admin_deps(request)
    found = await batches.recent(deps.records, deps.clock())
    return json_response({"data": [{**batches.summary(b), "results": []} for b in found]})


async def get_batch(request: Request) -> Response:
    deps = await admin_deps(request)
    batch_id = request.path_params["batch_id"]
    batch = await batches.advance(
        deps.records,
        _actions(deps),
        batch_id,
        deps.clock(),
        concurrency=deps.settings.batch_concurrency,
        clock=deps.clock,
    )
    return json_response(batches.summary(batch), headers={"cache-control": "no-store"})


async def voice_token(request: Request) -> Response:
    """E20 for the chosen account: the LiveKit URL, room and token a browser would connect with."""
    from core.protocol.classify import UpstreamFailure

    deps = await admin_deps(request)
    body = await _json(request)
    account_id, voice = body.get("account_id"), body.get("voice", "ara")
    personality, speed = body.get("personality", "assistant"), body.get("speed", 1.0)
    if not isinstance(account_id, str) or not account_id:
        raise InvalidRequest("`account_id` names the account to speak as.", param="account_id")
    if not isinstance(voice, str) or not voice or not isinstance(personality, str) or not personality:
        raise InvalidRequest("`voice` and `personality` must be non-empty strings.", param="voice")
    if not isinstance(speed, int | float) or isinstance(speed, bool) or not 0.5 <= speed <= 2.0:
        raise InvalidRequest("`speed` must be a number from 0.5 to 2.", param="speed")
    account = await deps.store.get(account_id)
    if account is None:
        raise NotFound(f"No account `{account_id}`.", param="account_id", code="account_not_found")
    client = deps.livekit
    try:
        found = await client.token(account.token, voice=voice, personality=personality, speed=float(speed))
    except UpstreamFailure as failure:
        raise failure.to_error(deps.settings.cooldown_seconds) from None
    return json_response(
        {**found, "account_id": account.id, "voice": voice, "personality": personality, "speed": speed},
        headers={"cache-control": "no-store"},
    )


routes = [
    Route("/admin", page, methods=["GET"]),
    Route("/admin/assets/{name}", asset, methods=["GET"]),
    Route("/admin/login", login, methods=["POST"]),
    Route("/admin/logout", logout, methods=["POST"]),
    Route("/admin/api/session", session, methods=["GET"]),
    Route("/admin/api/batches", list_batches, methods=["GET"]),
    Route("/admin/api/batches", start_batch, methods=["POST"]),
    Route("/admin/api/batches/{batch_id}", get_batch, methods=["GET"]),
    Route("/admin/api/voice/token", voice_token, methods=["POST"]),
]
