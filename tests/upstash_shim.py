"""An Upstash-REST-compatible front for a real redis-server, so tests drive the real client.

Faithful to Upstash's documented REST protocol: `POST /` (one command as a JSON array), `POST /pipeline`
(not atomic) and `POST /multi-exec` (real MULTI/EXEC), path-style `GET|POST /cmd/arg/...`,
Bearer or `?_token=` auth (401 with a JSON body), `{"result": ...}` / `{"error": ...}` bodies
with RESP2 shapes, `Upstash-Encoding: base64` for every string except exactly "OK", Redis
error prefixes restored, and the Upstash-only `allow-key-locking` shebang flag removed.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ExecAbortError, NoScriptError, ReadOnlyError, RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_SHEBANG_FLAG = re.compile(r"^(#!lua[^\n]*?)\s*flags=allow-key-locking", re.MULTILINE)


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _arg(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _error_text(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, NoScriptError):
        return "NOSCRIPT " + text
    if isinstance(exc, ExecAbortError):
        return "EXECABORT " + text
    if isinstance(exc, ReadOnlyError):
        return "READONLY " + text
    head = text.split(" ", 1)[0]
    if head.isupper() and head.isalpha():  # WRONGTYPE, BUSY, ...: redis-py kept the prefix
        return text
    return "ERR " + text


def _encode(value: Any, b64: bool) -> Any:
    if isinstance(value, bytes):
        if b64:
            return "OK" if value == b"OK" else base64.b64encode(value).decode()
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        if b64:
            return "OK" if value == "OK" else base64.b64encode(value.encode()).decode()
        return value
    if isinstance(value, (list, tuple)):
        return [_encode(v, b64) for v in value]
    if isinstance(value, float):
        return str(value)
    return value


class Shim:
    """The ASGI app; `redis_url` is the real server behind it."""

    def __init__(self, redis_url: str, token: str) -> None:
        self.token = token
        self._redis_url = redis_url
        self._redis: aioredis.Redis | None = None
        self._sha_map: dict[str, str] = {}
        self.app = Starlette(
            routes=[
                Route("/pipeline", self.pipeline, methods=["POST"]),
                Route("/multi-exec", self.multi_exec, methods=["POST"]),
                Route("/", self.single, methods=["POST"]),
                Route("/{path:path}", self.path_style, methods=["GET", "POST", "PUT", "HEAD"]),
            ],
            lifespan=self._lifespan,
        )

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            client = aioredis.Redis.from_url(self._redis_url, protocol=2, decode_responses=False)
            client.response_callbacks.clear()  # raw RESP2 replies: HGETALL stays a flat list
            self._redis = client
        return self._redis

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else request.query_params.get("_token", "")
        return given == self.token

    def _prepare(self, command: Any) -> list[str]:
        if not isinstance(command, list) or not command or not isinstance(command[0], str):
            raise ValueError("ERR the command must be a non-empty array with a string head")
        args = [_arg(v) for v in command]
        name = args[0].upper()
        if name in ("EVAL", "EVAL_RO") and len(args) > 1:
            original = args[1]
            rewritten = _SHEBANG_FLAG.sub(r"\1", original)
            if rewritten != original:
                self._sha_map[hashlib.sha1(original.encode()).hexdigest()] = hashlib.sha1(
                    rewritten.encode()
                ).hexdigest()
                args[1] = rewritten
        elif name in ("EVALSHA", "EVALSHA_RO") and len(args) > 1:
            args[1] = self._sha_map.get(args[1], args[1])
        return args

    async def _guard(self, request: Request) -> tuple[Any, bool] | Response:
        if not self._authorized(request):
            return _json({"error": "Unauthorized"}, 401)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _json({"error": "ERR failed to parse the request body as JSON"}, 400)
        return body, request.headers.get("upstash-encoding", "").lower() == "base64"

    async def single(self, request: Request) -> Response:
        guarded = await self._guard(request)
        if isinstance(guarded, Response):
            return guarded
        body, b64 = guarded
        return await self._one(body, b64)

    async def _one(self, command: Any, b64: bool) -> Response:
        try:
            args = self._prepare(command)
            result = await self._client().execute_command(*args)
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        except RedisError as exc:
            return _json({"error": _error_text(exc)}, 400)
        return _json({"result": _encode(result, b64)})

    async def path_style(self, request: Request) -> Response:
        if not self._authorized(request):
            return _json({"error": "Unauthorized"}, 401)
        command: list[Any] = [part for part in request.url.path.split("/") if part]
        if request.method in ("POST", "PUT"):
            body = await request.body()
            if body:
                command.append(body.decode())
        for name, value in request.query_params.items():
            if name != "_token":
                command.extend([name, value] if value else [name])
        return await self._one(command, request.headers.get("upstash-encoding", "").lower() == "base64")

    async def _batch(self, request: Request, transaction: bool) -> Response:
        guarded = await self._guard(request)
        if isinstance(guarded, Response):
            return guarded
        body, b64 = guarded
        if not isinstance(body, list) or not body:
            return _json({"error": "ERR the body must be a non-empty array of commands"}, 400)
        try:
            commands = [self._prepare(c) for c in body]
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        pipe = self._client().pipeline(transaction=transaction)
        for args in commands:
            pipe.execute_command(*args)
        try:
            results = await pipe.execute(raise_on_error=False)
        except RedisError as exc:  # a discarded transaction
            return _json({"error": _error_text(exc)}, 400 if transaction else 500)
        return _json(
            [
                {"error": _error_text(r)} if isinstance(r, BaseException) else {"result": _encode(r, b64)}
                for r in results
            ]
        )

    async def pipeline(self, request: Request) -> Response:
        return await self._batch(request, transaction=False)

    async def multi_exec(self, request: Request) -> Response:
        return await self._batch(request, transaction=True)
