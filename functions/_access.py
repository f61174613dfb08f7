"""Who a request is and what it may do (client keys and their limits), and what it did (the usage
ledger, metrics, the request log line): the two ends of every request at the edge.

`EdgeMiddleware` calls `admit` once the root keys were checked, and `finish` when the response
has gone out (or the client left). Root keys (`GROKGATE_API_KEYS`) have no limits; a client key
(created in the admin API, kept in the store) is checked, counted and released here. A route
that serves a model calls `allow(request, model)`: the key's allowlist, and the model the
ledger books the request under.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import Scope

from core.errors import AuthenticationFailed
from core.keys import OPEN_ID, ROOT_ID, SECRET_PREFIX, ClientKey
from core.services.keys import Admission, allow_model
from core.services.usage import UsageEntry
from functions._meter import Meter, meter_of
from functions._metrics import METRICS, emf_line
from functions._wiring import Deps

log = logging.getLogger("grokgate.request")
_ON_LAMBDA = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def client_secret(presented: str | None, *, root_matched: bool, auth_on: bool) -> str | None:
    """The presented key if it must be looked up among the client keys: with auth on, every key
    that is not a root key; in open mode, only one that looks like a client key (its limits
    still apply when an operator hands them out on a loopback gateway)."""
    if not presented or root_matched:
        return None
    if auth_on or presented.startswith(SECRET_PREFIX):
        return presented
    return None


async def admit(scope: Scope, deps: Deps, secret: str, *, auth_on: bool) -> Admission | None:
    """Authenticate a client key and count the request against its limits (raises a
    `GatewayError`: 401 unknown or expired, 429 over a limit)."""
    keys = deps.key_service
    key = await keys.authenticate(secret)
    if key is None:
        if auth_on:
            raise AuthenticationFailed("Incorrect API key provided.")
        return None
    meter_of(scope).key_id = key.id
    scope["state"]["client_key"] = key
    return await keys.admit(key)


def allow(request: Request, model: str) -> None:
    """The route's model check: a client key's allowlist (403), and the ledger's model."""
    meter_of(request.scope).model = model
    key: ClientKey | None = request.scope.get("state", {}).get("client_key")
    allow_model(key, model)


def principal_id(scope: Scope, auth_on: bool) -> str:
    key = scope.get("state", {}).get("client_key")
    if key is not None:
        return str(key.id)
    return ROOT_ID if auth_on else OPEN_ID


async def finish(
    scope: Scope, deps: Deps, meter: Meter, admission: Admission | None, *, counted: bool
) -> None:
    """After the response: release the key's ticket, book the request, observe it, log it.
    Nothing here may fail the request (it is over): store errors are logged and dropped."""
    end = time.perf_counter()
    if not meter.first_byte:
        meter.first_byte = end
    status = meter.status or 499  # no response started: the client went away
    route = _route_of(scope)
    answer = _answer_facts(meter.answer)
    ttfb, total, overhead = meter.first_byte - meter.started, end - meter.started, meter.overhead_ms() / 1000
    try:
        if admission is not None:
            await deps.key_service.release(admission)
        if counted and deps.settings.usage_ledger:
            key_id = principal_id(scope, bool(deps.settings.api_keys))
            await deps.usage_ledger.record(
                UsageEntry(
                    key_id, meter.model, route, status, answer["input"], answer["output"], answer["failure"]
                )
            )
    except Exception as exc:  # the store is down, or has no records (a test double): the answer is out
        log.warning("usage not recorded for %s: %s", scope.get("state", {}).get("request_id"), exc)
    METRICS.observe(route, meter.model, status, ttfb, total, overhead, answer["failure"])
    if _ON_LAMBDA:
        print(emf_line(route, meter.model, status, ttfb, total, overhead), flush=True)
    if log.isEnabledFor(logging.INFO):
        fields = {
            "request_id": scope.get("state", {}).get("request_id"),
            "method": scope.get("method"),
            "route": route,
            "key_id": principal_id(scope, bool(deps.settings.api_keys)),
            "model": meter.model or None,
            "account_id": answer["account"],
            "status": status,
            "upstream": answer["outcome"],
            "ttfb_ms": round(ttfb * 1000, 2),
            "total_ms": round(total * 1000, 2),
            "overhead_ms": round(overhead * 1000, 2),
            "input_tokens": answer["input"],
            "output_tokens": answer["output"],
        }
        text = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        log.info("request %s", text, extra={"fields": fields})


def _route_of(scope: Scope) -> str:
    """The route template (bounded, unlike paths with ids); for a request refused before routing,
    the template its path would have matched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return str(path)
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", ()):
        match, _ = candidate.matches(scope)
        if match is not Match.NONE:
            return str(getattr(candidate, "path", "(unmatched)"))
    return "(unmatched)"


def _answer_facts(answer: Any) -> dict[str, Any]:
    """The account, outcome and usage of an answer (the innermost chat stream of a turn)."""
    facts: dict[str, Any] = {"account": None, "outcome": None, "input": 0, "output": 0, "failure": ""}
    if answer is None:
        return facts
    while hasattr(answer, "stream"):
        answer = answer.stream
    facts["account"] = getattr(answer, "account_id", None)
    outcome = getattr(answer, "outcome", None)
    if outcome is not None:
        facts["outcome"] = outcome.kind.value
    failure = getattr(answer, "failure_kind", "")
    facts["failure"] = failure or ""
    usage = getattr(answer, "usage", None)
    if usage is not None:
        facts["input"], facts["output"] = usage.prompt_tokens, usage.completion_tokens
    return facts


class JsonFormatter(logging.Formatter):
    """`GROKGATE_LOG_FORMAT=json`: one JSON object per line; a request line carries its fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line["message"] = record.msg.split(" ", 1)[0] if isinstance(record.msg, str) else line["message"]
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()
