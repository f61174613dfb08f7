"""build_app(routes): a Starlette app with auth, request ids and one error handler.

Auth and request ids are one pure-ASGI middleware (no BaseHTTPMiddleware: it would buffer and
cost a task per request on the streaming hot path). Errors are rendered by class: every
`GatewayError` carries its status and types; anything else is a 500 that leaks nothing.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import (
    AuthenticationFailed,
    GatewayError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    RequestTooLarge,
)
from functions._http import deps_of, error_response, json_response
from functions._wiring import Deps

log = logging.getLogger("grokgate.app")
VERSION = "0.1.0"


def key_matches(presented: str, keys: Sequence[str]) -> bool:
    """Constant-time check against every configured key (no early exit on a match)."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(presented.encode(), key.encode())
    return found


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    key = headers.get(b"x-api-key")
    return key.decode("latin-1").strip() if key else None


class EdgeMiddleware:
    """Request id on every response; API-key auth on /v1; early 413 on a declared oversize body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(12)
        scope.setdefault("state", {})["request_id"] = request_id
        raw_id = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", raw_id)]
            await send(message)

        path: str = scope["path"]
        headers = dict(scope["headers"])
        settings = deps_of(Request(scope)).settings
        error: GatewayError | None = None
        if (path.startswith("/v1/") or path == "/v1") and settings.api_keys and not signed_link(scope):
            key = presented_key(headers)
            if not key:
                error = AuthenticationFailed(
                    "Missing API key: send it as `Authorization: Bearer <key>` or `x-api-key: <key>`."
                )
            elif not key_matches(key, settings.api_keys):
                error = AuthenticationFailed("Incorrect API key provided.")
        length = headers.get(b"content-length")
        if error is None and length and length.isdigit() and int(length) > settings.max_body_bytes:
            error = RequestTooLarge(
                f"The request body is larger than the limit of {settings.max_body_bytes} bytes."
            )
        if error is not None:
            await error_response(error, path, request_id)(scope, receive, send)
            return
        await self.app(scope, receive, send_with_id)


def signed_link(scope: Scope) -> bool:
    """A signed media link (`/v1/files/{id}/content?exp=…&sig=…`): its route checks the signature."""
    return scope["path"].startswith("/v1/files/") and b"sig=" in scope.get("query_string", b"")


def _request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    if exc.status >= 500:
        log.warning("request %s failed: %s %s", _request_id(request), type(exc).__name__, exc.message)
    return error_response(exc, request.url.path, _request_id(request))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: GatewayError
    if exc.status_code == 404:
        error = NotFound(f"Unknown route: {request.method} {request.url.path}.")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"Method {request.method} is not allowed on {request.url.path}.")
    else:
        error = InvalidRequest(str(exc.detail))
    return error_response(error, request.url.path, _request_id(request))


async def _unexpected(request: Request, exc: Exception) -> Response:
    request_id = _request_id(request)
    log.error("request %s crashed", request_id, exc_info=exc)
    error = InternalError(f"The server had an error processing your request (request id {request_id}).")
    return error_response(error, request.url.path, request_id)


async def health(request: Request) -> Response:
    """Liveness and whether the store answers; no auth, no secrets."""
    deps = deps_of(request)
    try:
        await deps.store.ping()
        store = "ok"
    except GatewayError:
        store = "unavailable"
    status = 200 if store == "ok" else 503
    return json_response(
        {"status": "ok" if status == 200 else "degraded", "version": VERSION, "store": store}, status
    )


def build_app(routes: Sequence[BaseRoute], *, deps: Deps | None = None) -> Starlette:
    """One deployable: the given routes plus /health, auth, request ids and error envelopes."""
    app = Starlette(
        routes=[*routes, Route("/health", health, methods=["GET"])],
        exception_handlers={GatewayError: _gateway_error, HTTPException: _http_error, Exception: _unexpected},
    )
    app.state.deps = deps
    app.add_middleware(EdgeMiddleware)
    return app
