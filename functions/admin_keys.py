"""Client keys, the usage ledger and the metrics, in the admin deployable.

POST   /admin/api/keys         {"name", "models"?, "rpm"?, "concurrency"?, "daily_requests"?,
                               "daily_tokens"?, "expires_at"?} -> 201 with the secret, shown once
GET    /admin/api/keys         every key (no secrets)
GET    /admin/api/keys/{id}    one key
PATCH  /admin/api/keys/{id}    any of the fields above (null clears a limit)
DELETE /admin/api/keys/{id}    revoke: the key answers 401 from then on
GET    /admin/api/usage        ?from=&to= (unix seconds, default the last 7 days) &group_by=key|model|day
GET    /admin/api/metrics/summary  the console's headline figures (this process's requests, the pool)
GET    /metrics                Prometheus text: the admin key, or GROKGATE_METRICS_KEY
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.errors import AuthenticationFailed, InvalidRequest, NotFound
from core.services.usage import GROUPS
from functions._console_session import admin_deps
from functions._http import deps_of, json_response, validate
from functions._metrics import METRICS, pool_figures, render

PositiveInt = StrictInt


class KeyFields(BaseModel):
    """A key's settable fields, strictly typed (a limit is a positive integer, or null for none)."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr | None = Field(default=None, min_length=1, max_length=200)
    models: list[StrictStr] | None = None
    rpm: PositiveInt | None = Field(default=None, ge=1)
    concurrency: PositiveInt | None = Field(default=None, ge=1)
    daily_requests: PositiveInt | None = Field(default=None, ge=1)
    daily_tokens: PositiveInt | None = Field(default=None, ge=1)
    expires_at: StrictInt | StrictFloat | None = Field(default=None, gt=0)


async def _fields(request: Request) -> dict[str, Any]:
    import orjson

    from functions._http import read_body

    raw = await read_body(request)
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from None
    return validate(data, KeyFields).model_dump(exclude_unset=True)


async def create_key(request: Request) -> Response:
    deps = await admin_deps(request)
    fields = await _fields(request)
    if not fields.get("name"):
        raise InvalidRequest("A key needs a `name`.", param="name")
    key, secret = await deps.key_service.create(fields)
    return json_response({**key.public(), "key": secret}, 201)


async def list_keys(request: Request) -> Response:
    deps = await admin_deps(request)
    keys = await deps.key_service.list()
    return json_response({"object": "list", "data": [k.public() for k in keys]})


async def get_key(request: Request) -> Response:
    deps = await admin_deps(request)
    key = await deps.key_service.get(request.path_params["key_id"])
    if key is None:
        raise NotFound(f"No client key {request.path_params['key_id']!r}.", param="id")
    return json_response(key.public())


async def patch_key(request: Request) -> Response:
    deps = await admin_deps(request)
    fields = await _fields(request)
    if "name" in fields and not fields["name"]:
        raise InvalidRequest("`name` may not be empty.", param="name")
    key = await deps.key_service.change(request.path_params["key_id"], fields)
    return json_response(key.public())


async def delete_key(request: Request) -> Response:
    deps = await admin_deps(request)
    key_id = request.path_params["key_id"]
    if not await deps.key_service.revoke(key_id):
        raise NotFound(f"No client key {key_id!r}.", param="id")
    return json_response({"id": key_id, "object": "client_key.deleted", "deleted": True})


def _seconds(request: Request, name: str, default: float) -> float:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise InvalidRequest(f"`{name}` must be unix seconds.", param=name) from None


async def usage(request: Request) -> Response:
    deps = await admin_deps(request)
    now = time.time()
    end = _seconds(request, "to", now)
    start = _seconds(request, "from", end - 7 * 86400)
    group_by = request.query_params.get("group_by", "key")
    if group_by not in GROUPS:
        raise InvalidRequest(f"`group_by` must be one of: {', '.join(GROUPS)}.", param="group_by")
    if start > end:
        raise InvalidRequest("`from` is after `to`.", param="from")
    rows = await deps.usage_ledger.query(start, end, group_by)
    return json_response({"object": "list", "group_by": group_by, "from": start, "to": end, "data": rows})


async def _accounts(deps: Any) -> list[Any]:
    accounts: list[Any] = []
    cursor = None
    while True:
        page = await deps.store.list(cursor=cursor, limit=500)
        accounts.extend(page.items)
        cursor = page.next_cursor
        if not cursor:
            return accounts


async def metrics_summary(request: Request) -> Response:
    """Requests this process answered by status class, upstream failures, median TTFB and
    overhead, and the pool: what the console shows above its keys and usage."""
    deps = await admin_deps(request)
    statuses: dict[str, int] = {}
    for (_, _, status), n in METRICS.requests.items():
        label = status[0] + "xx"
        statuses[label] = statuses.get(label, 0) + n
    pool = pool_figures(await _accounts(deps), time.time())
    states: dict[str, int] = {}
    for (state, _), n in pool["accounts"].items():
        states[state] = states.get(state, 0) + n
    return json_response(
        {
            "requests": sum(statuses.values()),
            "statuses": statuses,
            "upstream_failures": dict(METRICS.failures),
            "ttfb_p50_seconds": _median(METRICS.ttfb),
            "overhead_p50_seconds": _median(METRICS.overhead),
            "accounts": states,
            "leases_in_flight": pool["in_flight"],
            "quota_remaining": pool["quota"],
        }
    )


def _median(series: dict[str, Any]) -> float | None:
    """The bucket bound under which half of the observations fall, over every route."""
    from functions._metrics import BUCKETS

    counts = [0] * (len(BUCKETS) + 1)
    for histogram in series.values():
        counts = [a + b for a, b in zip(counts, histogram.counts, strict=True)]
    total = sum(counts)
    if not total:
        return None
    seen = 0
    for bound, n in zip([*BUCKETS, None], counts, strict=True):
        seen += n
        if seen * 2 >= total:
            return bound
    return None


async def metrics(request: Request) -> Response:
    deps = deps_of(request)
    auth = request.headers.get("authorization", "")
    presented = (
        auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-api-key", "").strip()
    )
    allowed = [k for k in (deps.settings.admin_key, deps.settings.metrics_key) if k]
    ok = False
    for key in allowed or ["\x00unset"]:
        ok |= hmac.compare_digest(presented.encode(), key.encode())
    if not allowed or not presented or not ok:
        raise AuthenticationFailed("GET /metrics needs the admin key or GROKGATE_METRICS_KEY (Bearer).")
    body = render(METRICS, pool_figures(await _accounts(deps), time.time()))
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


PREFIX = "/admin/api/keys"
routes = [
    Route(PREFIX, create_key, methods=["POST"]),
    Route(PREFIX, list_keys, methods=["GET"]),
    Route(PREFIX + "/{key_id}", get_key, methods=["GET"]),
    Route(PREFIX + "/{key_id}", patch_key, methods=["PATCH"]),
    Route(PREFIX + "/{key_id}", delete_key, methods=["DELETE"]),
    Route("/admin/api/usage", usage, methods=["GET"]),
    Route("/admin/api/metrics/summary", metrics_summary, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
