"""build_app(routes): a Starlette app with auth, request ids and one error handler.

Auth, request ids and errors are one pure-ASGI middleware (no BaseHTTPMiddleware: it would
buffer and cost a task per request on the streaming hot path), and it is the only one. Errors
are rendered by class: every `GatewayError` carries its status and types; anything else is a
500 that leaks nothing.
"""

from __future__ import annotations

import gc
import hmac
import inspect
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

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
from core.services.keys import Admission
from functions._access import admit, client_secret, finish
from functions._http import deps_of, deps_of_scope, error_response, json_response, report_ignored
from functions._meter import Meter
from functions._wiring import Deps

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger("grokgate.app")
VERSION = "0.1.0"
GC_THRESHOLDS = (7000, 20, 20)  # young, middle, old: see settle_heap()


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
    """The one middleware: request id on every response, API-key auth on /v1, early 413 on a
    declared oversize body, CORS for the allowed origins (none by default), and every error
    rendered in the caller's envelope.

    It replaces Starlette's own error middlewares (see `GatewayApp`): one wrapper around `send`
    instead of four on the streaming path.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(12)
        meter = Meter()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["meter"] = meter
        scope["starlette.exception_handlers"] = _NO_HANDLERS  # route-level errors come up to here
        raw_id = request_id.encode()
        started = False
        extra: list[tuple[bytes, bytes]] = []  # a client key's rate-limit headers

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                overhead = meter.response_started(message["status"])
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", raw_id),
                    (b"x-grokgate-overhead-ms", overhead),
                    *extra,
                ]
            await send(message)

        async def send_error(message: Message) -> None:
            if message["type"] == "http.response.start":
                overhead = meter.response_started(message["status"])
                message["headers"] = [*message.get("headers", []), (b"x-grokgate-overhead-ms", overhead)]
            await send(message)

        path: str = scope["path"]
        deps = deps_of_scope(scope)
        if deps.overrides_due():  # the console's overrides, re-read every few seconds
            await deps.refresh_overrides()
        settings = deps.settings
        if settings.cors_origins:  # off by default: the hot path pays one attribute test
            origin = _allowed_origin(scope, settings.cors_origins)
            if origin is not None:
                if scope["method"] == "OPTIONS" and _is_preflight(scope):
                    await _preflight(scope, send, origin, raw_id)
                    return
                send = _with_cors(send, origin)
        counted = path.startswith("/v1/") and not signed_link(scope)
        admission: Admission | None = None
        try:
            error = _refusal(scope, path, settings)
            secret = state.pop("client_secret", None)
            if error is None and secret is not None:
                try:
                    admission = await admit(scope, deps, secret, auth_on=bool(settings.api_keys))
                except GatewayError as exc:
                    error = exc
                if admission is not None:
                    extra.extend((k.encode(), v.encode()) for k, v in admission.headers.items())
            if error is None:
                try:
                    await self.app(scope, receive, send_with_id)
                    return
                except Exception as exc:
                    if started:  # too late for an error response: the server drops the connection
                        raise
                    error = _as_gateway_error(exc, scope, request_id)
            await error_response(error, path, request_id)(scope, receive, send_error)
        finally:
            await finish(scope, deps, meter, admission, counted=counted)


_NO_HANDLERS: tuple[dict[Any, Any], dict[Any, Any]] = ({}, {})


def _refusal(scope: Scope, path: str, settings: Settings) -> GatewayError | None:
    """Auth and the declared body size, checked before any route runs."""
    headers = dict(scope["headers"])
    if (path.startswith("/v1/") or path == "/v1") and not signed_link(scope):
        auth_on = bool(settings.api_keys)
        key = presented_key(headers)
        if not key and auth_on:
            return AuthenticationFailed(
                "Missing API key: send it as `Authorization: Bearer <key>` or `x-api-key: <key>`."
            )
        root = auth_on and key is not None and key_matches(key, settings.api_keys)
        secret = client_secret(key, root_matched=root, auth_on=auth_on)
        if secret is not None:  # a client key: looked up (and counted) by the caller
            scope["state"]["client_secret"] = secret
    length = headers.get(b"content-length")
    if length and length.isdigit() and int(length) > settings.max_body_bytes:
        return RequestTooLarge(
            f"The request body is larger than the limit of {settings.max_body_bytes} bytes."
        )
    return None


# CORS (GROKGATE_CORS_ORIGINS): a browser's preflight is answered here, before auth (it never
# carries the key); answers to allowed origins name the origin and expose the gateway's headers.
CORS_METHODS = b"GET, POST, PATCH, DELETE, OPTIONS"
CORS_DEFAULT_HEADERS = (
    b"authorization, content-type, x-api-key, anthropic-version, anthropic-beta, openai-beta"
)
CORS_EXPOSED = b"x-request-id, x-grokgate-ignored-params, retry-after"
CORS_MAX_AGE = b"600"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _allowed_origin(scope: Scope, allowed: Sequence[str]) -> bytes | None:
    origin = _header(scope, b"origin")
    if origin is None:
        return None
    if "*" in allowed or origin.decode("latin-1").lower() in allowed:
        return origin
    return None


def _is_preflight(scope: Scope) -> bool:
    return _header(scope, b"access-control-request-method") is not None


async def _preflight(scope: Scope, send: Send, origin: bytes, request_id: bytes) -> None:
    requested = _header(scope, b"access-control-request-headers")
    headers = [
        (b"access-control-allow-origin", origin),
        (b"access-control-allow-methods", CORS_METHODS),
        (b"access-control-allow-headers", requested or CORS_DEFAULT_HEADERS),
        (b"access-control-max-age", CORS_MAX_AGE),
        (b"vary", b"origin, access-control-request-method, access-control-request-headers"),
        (b"content-length", b"0"),
        (b"x-request-id", request_id),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _with_cors(send: Send, origin: bytes) -> Send:
    async def send_with_cors(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [
                *message.get("headers", []),
                (b"access-control-allow-origin", origin),
                (b"access-control-expose-headers", CORS_EXPOSED),
                (b"vary", b"origin"),
            ]
        await send(message)

    return send_with_cors


def _as_gateway_error(exc: Exception, scope: Scope, request_id: str) -> GatewayError:
    """Our errors as they are; Starlette's 404/405 in our words; anything else a 500 that leaks
    nothing but the request id (the traceback goes to the log)."""
    if isinstance(exc, GatewayError):
        if exc.status >= 500:
            log.warning("request %s failed: %s %s", request_id, type(exc).__name__, exc.message)
        return exc
    method, path = scope["method"], scope["path"]
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            return NotFound(f"Unknown route: {method} {path}.")
        if exc.status_code == 405:
            return MethodNotAllowed(f"Method {method} is not allowed on {path}.")
        return InvalidRequest(str(exc.detail))
    log.error("request %s crashed", request_id, exc_info=exc)
    return InternalError(f"The server had an error processing your request (request id {request_id}).")


class _Endpoint:
    """An async `request -> response` handler as a bare ASGI app: what Starlette's per-route
    wrapper does, minus its exception layer (EdgeMiddleware renders every error)."""

    __slots__ = ("handler",)

    def __init__(self, handler: Callable[[Request], Awaitable[Response]]) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handler(Request(scope, receive, send))
        ignored = scope.get("state", {}).get("ignored")
        if ignored:  # the field policy: what the body held that the gateway did not act on
            report_ignored(response, ignored)
        await response(scope, receive, send)


def _bare(route: BaseRoute) -> BaseRoute:
    if isinstance(route, Route) and inspect.iscoroutinefunction(route.endpoint):
        methods = sorted(route.methods or ())
        return Route(route.path, _Endpoint(route.endpoint), methods=methods, name=route.name)
    return route


class GatewayApp(Starlette):
    """Starlette whose middleware stack is `EdgeMiddleware` around the router, nothing else."""

    def build_middleware_stack(self) -> ASGIApp:
        return EdgeMiddleware(self.router)


def signed_link(scope: Scope) -> bool:
    """A signed media link (`/v1/files/{id}/content?exp=…&sig=…`): its route checks the signature."""
    return scope["path"].startswith("/v1/files/") and b"sig=" in scope.get("query_string", b"")


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


def settle_heap() -> None:
    """Tune the cyclic garbage collector for a request server (process-wide, idempotent).

    What exists once the app is built (modules, routes, schemas) lives as long as the process:
    `gc.freeze()` keeps the collector from scanning it again. A streamed answer allocates
    thousands of short-lived, mostly acyclic objects, so the default young-generation threshold
    (700) runs a collection several times per request; a larger one keeps the memory bound while
    cutting that work by an order of magnitude (about 10% of the CPU of a chat request).
    """
    gc.freeze()
    gc.set_threshold(GC_THRESHOLDS[0], GC_THRESHOLDS[1], GC_THRESHOLDS[2])


def build_app(routes: Sequence[BaseRoute], *, deps: Deps | None = None) -> Starlette:
    """One deployable: the given routes plus /health and /openapi.json, auth, request ids and
    error envelopes."""
    from functions.openapi import openapi_json

    own = (Route("/health", health, methods=["GET"]), Route("/openapi.json", openapi_json, methods=["GET"]))
    app = GatewayApp(routes=[_bare(r) for r in (*routes, *own)])
    app.state.deps = deps
    settle_heap()
    return app
