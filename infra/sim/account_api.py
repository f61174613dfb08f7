"""Account calls: rate limits (E10), Imagine quotas (E11), ToS record (E17), birth date (E19),
LiveKit token (E20), session identity (E22), the page that carries the statsig seed and curves
(E23) and the JavaScript chunk with the seed indices (see `build.py`)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from infra.sim.accounts import CHAT_MODES
from infra.sim.gate import admit
from infra.sim.state import SimState
from infra.sim.wire import bad_request, challenge_response, json_response

_IMAGINE_KEYS = (
    ("imagePro", "image_pro"),
    ("imageEdit", "image_edit"),
    ("video", "video"),
    ("video720p", "video_720p"),
)
BIRTH_DATE_LOCKED = {
    "code": 8,
    "message": "Birth date can no longer be changed. [WKE=account:birth-date-change-limit-reached]",
    "details": [],
}


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


async def _body(request: Request) -> dict[str, object] | None:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def routes(state: SimState) -> list[Route]:
    async def rate_limits(request: Request) -> Response:
        account = await admit(state, request, statsig=True)
        if isinstance(account, Response):
            return account
        body = await _body(request)
        if body is None or not isinstance(body.get("modelName"), str):
            return bad_request("Invalid request: missing required field `modelName`")
        mode = str(body["modelName"])
        if mode not in CHAT_MODES:
            return bad_request(f"Invalid request: unknown modelName {mode!r}")
        remaining, total, size, _ = state.accounts.quota(account, mode)
        return json_response(
            {
                "windowSizeSeconds": size,
                "remainingQueries": remaining,
                "totalQueries": total,
                "lowEffortRateLimits": None,
                "highEffortRateLimits": None,
            }
        )

    async def imagine_quota(request: Request) -> Response:
        account = await admit(state, request, statsig=True)
        if isinstance(account, Response):
            return account
        out: dict[str, object] = {"image": None}
        for key, bucket in _IMAGINE_KEYS:
            remaining, total, size, resets = state.accounts.quota(account, bucket)
            if total == 0:
                out[key] = None
                continue
            entry: dict[str, object] = {
                "available": remaining > 0,
                "remainingQueries": remaining,
                "windowSizeSeconds": size,
            }
            if remaining == 0 and resets is not None:
                entry["nextAvailableAt"] = _rfc3339(resets)
            out[key] = entry
        return json_response({k: out[k] for k in ("image", "imageEdit", "imagePro", "video", "video720p")})

    async def set_tos(request: Request) -> Response:
        account = await admit(state, request, statsig=True)
        if isinstance(account, Response):
            return account
        body = await _body(request)
        if body is None or not isinstance(body.get("tosVersion"), int):
            return bad_request("Invalid request: missing required field `tosVersion`")
        account.tos_version = int(body["tosVersion"])  # type: ignore[call-overload]
        return json_response({})

    async def set_birth_date(request: Request) -> Response:
        account = await admit(state, request, statsig=True)
        if isinstance(account, Response):
            return account
        body = await _body(request)
        value = body.get("birthDate") if body else None
        if not isinstance(value, str):
            return bad_request("Invalid request: missing required field `birthDate`")
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return bad_request("Invalid request: birthDate must be an RFC 3339 timestamp")
        if account.birth_date is not None:
            return json_response(BIRTH_DATE_LOCKED, 429)
        account.birth_date = value
        return json_response({})

    async def livekit_token(request: Request) -> Response:
        account = await admit(state, request)
        if isinstance(account, Response):
            return account
        body = await _body(request)
        if body is None or not isinstance(body.get("sessionPayload"), str):
            return bad_request("Invalid request: missing required field `sessionPayload`")
        return json_response(
            {
                "token": "sim-livekit." + secrets.token_urlsafe(32),
                "livekitUrl": "wss://livekit.grok.com",
                "participantName": f"user-{account.user_id[:8]}",
                "roomName": f"room-{secrets.token_hex(6)}",
            }
        )

    async def auth_session(request: Request) -> Response:
        # The identity call reports bad sessions in its body instead of failing (E22).
        token = request.cookies.get("sso")
        account = state.accounts.get(token) if token else None
        if account is None or account.expired:
            return json_response({"status": "unauthenticated"})
        if account.blocked:
            return json_response({"status": "blocked"})
        team = f"team-{account.user_id[:8]}"
        return json_response(
            {
                "status": "authenticated",
                "session": {"userId": account.user_id, "email": account.email, "organizationId": team},
                "user": {
                    "id": account.user_id,
                    "userId": account.user_id,
                    "email": account.email,
                    "teamId": team,
                },
            }
        )

    async def index_page(request: Request) -> Response:
        # Anonymous navigation; /index answers a branded 404 that still carries the meta (E23).
        status = 404 if request.url.path == "/index" else 200
        needs_clearance = state.config.challenge_all
        if needs_clearance and not state.cleared(
            request.cookies.get("cf_clearance"), request.headers.get("user-agent")
        ):
            return challenge_response()
        return HTMLResponse(state.build.page(), status_code=status)

    async def chunk(request: Request) -> Response:
        name = request.path_params["name"]
        js = state.build.chunk_js(name.removesuffix(".js"))
        if js is None:
            return PlainTextResponse("Not Found", 404)
        return Response(js, media_type="application/javascript; charset=UTF-8")

    return [
        Route("/rest/rate-limits", rate_limits, methods=["POST"]),
        Route("/rest/media/imagine/quota_info", imagine_quota, methods=["POST"]),
        Route("/rest/auth/set-tos-accepted", set_tos, methods=["POST"]),
        Route("/rest/auth/set-birth-date", set_birth_date, methods=["POST"]),
        Route("/rest/livekit/tokens", livekit_token, methods=["POST"]),
        Route("/api/auth/session", auth_session, methods=["GET"]),
        Route("/index", index_page, methods=["GET"]),
        Route("/", index_page, methods=["GET"]),
        Route("/_next/static/chunks/{name}", chunk, methods=["GET"]),
    ]
