"""Edge codecs: request bodies into models, errors into envelopes, events into SSE bytes."""

from __future__ import annotations

import logging
from typing import Any, TypeVar
from urllib.parse import quote

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Scope

from core.errors import GatewayError, InvalidRequest, RequestTooLarge
from core.transcode.fields import RequestModel, unknown_fields
from functions._wiring import Deps, get_deps

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger("grokgate.http")

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def deps_of(request: Request) -> Deps:
    return deps_of_scope(request.scope)


def base_url(request: Request, deps: Deps) -> str:
    """Where media links point: the configured public URL, else this request's own origin."""
    return deps.settings.public_url or str(request.base_url).rstrip("/")


def deps_of_scope(scope: Scope) -> Deps:
    state = scope["app"].state
    deps: Deps | None = getattr(state, "deps", None)
    if deps is None:
        deps = get_deps()
        state.deps = deps
    return deps


def is_anthropic(path: str) -> bool:
    return path.startswith("/v1/messages")


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(content, status_code=status, headers=headers)


IGNORED_HEADER = "x-grokgate-ignored-params"


def report_ignored(response: Response, names: list[str]) -> Response:
    """Name the request parts that were accepted but not acted on (a header, and a debug log).
    `_app` calls it for every route whose body was a `RequestModel` (see `read_json`)."""
    if names:
        names = list(dict.fromkeys(names))
        log.debug("ignored request parts: %s", ", ".join(names))
        response.headers[IGNORED_HEADER] = header_list(names)
    return response


_HEADER_SAFE = "[]._=-:/*@$!~'()+;"
MAX_IGNORED_HEADER = 2048


def header_list(names: list[str]) -> str:
    """Client-chosen names as one legal header value: anything but plain ASCII percent-encoded
    (a key may be empty, hold a newline or be non-Latin), bounded in length."""
    value = ", ".join(quote(name, safe=_HEADER_SAFE) or '""' for name in names)
    if len(value) > MAX_IGNORED_HEADER:
        value = value[: MAX_IGNORED_HEADER - 5].rsplit(", ", 1)[0] + ", ..."
    return value


def error_response(error: GatewayError, path: str, request_id: str | None = None) -> Response:
    body = error.anthropic_body() if is_anthropic(path) else error.openai_body()
    headers = dict(error.headers)
    if request_id:
        headers["x-request-id"] = request_id
    return json_response(body, error.status, headers)


async def read_body(request: Request, limit: int | None = None) -> bytes:
    """The whole body; a 413 as soon as it passes `limit` (default `max_body_bytes`)."""
    if limit is None:
        limit = deps_of(request).settings.max_body_bytes
    chunks: list[bytes] = []
    size = 0
    while True:  # straight from the ASGI channel: no stream generator for a one-message body
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"The request body is larger than the limit of {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def read_json(request: Request, model: type[M]) -> M:
    """Parse and validate a JSON body; any fault is a 400 that names the field.

    A `RequestModel` body follows the field policy (`core.transcode.fields`): its unknown fields
    are refused in strict mode, else kept in `body.ignored`, which the route's response reports
    (the list is shared with the request's state, so what the normaliser adds is reported too)."""
    raw = await read_body(request)
    if not raw.strip():
        raise InvalidRequest("The request body is empty; a JSON object is required.")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from None
    settings = deps_of(request).settings
    body = validate(data, model, strict=settings.strict_params)
    name = getattr(body, "model", None)
    if isinstance(name, str) and settings.model_aliases:  # GROKGATE_MODEL_ALIASES, for every route
        body.model = settings.aliases.resolve(name)  # type: ignore[attr-defined]
    if isinstance(body, RequestModel):
        request.state.ignored = body.ignored
    return body


def validate(data: Any, model: type[M], *, strict: bool = False) -> M:
    """`data` as `model`, or a 400 naming the first bad field (or, in strict mode, the first
    unknown one)."""
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        body = model.model_validate(data)
    except ValidationError as exc:
        raise invalid_from(exc) from None
    if isinstance(body, RequestModel):
        unknown = unknown_fields(body)
        if unknown and strict:
            raise InvalidRequest(
                f"Unknown parameter: '{unknown[0]}' (strict mode refuses fields it does not know; "
                "unset GROKGATE_STRICT_PARAMS to accept and ignore them).",
                param=unknown[0],
                code="unknown_parameter",
            )
        body.ignored.extend(unknown)
    return body


def invalid_from(exc: ValidationError) -> InvalidRequest:
    """The first validation fault as a readable 400: `messages[0].role: Field required`."""
    first = exc.errors()[0]
    param = ""
    for part in first["loc"]:
        param += f"[{part}]" if isinstance(part, int) else (f".{part}" if param else str(part))
    message = first["msg"].removeprefix("Value error, ")
    return InvalidRequest(
        f"Invalid value for '{param}': {message}." if param else message, param=param or None
    )
