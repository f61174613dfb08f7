"""The console's settings page: the effective settings with where each came from, and the
behaviour overrides an operator may change at run time (kept in the store, applied by every
instance within `OVERRIDES_TTL` seconds; see `Deps.refresh_overrides`).

GET /admin/api/settings    every setting: value (secrets masked), source, editable, description
PUT /admin/api/settings    {"overrides": {"retry_budget": 3, "cooldown_seconds": null, ...}}
                           null drops an override (back to the deployed value)
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.errors import InvalidRequest, Overloaded
from core.settings import BEHAVIOUR_FIELDS, SECRET_FIELDS, Settings, SettingsError
from functions._console_session import admin_deps
from functions._http import json_response, read_body
from functions._wiring import OVERRIDES_KEY, OVERRIDES_TTL, Deps

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def shown(name: str, value: Any) -> Any:
    """A setting's value as the console may see it: secrets reduced to whether they are set."""
    if name == "api_keys":
        return f"{len(value)} key(s) set" if value else "none (open gateway)"
    if name in SECRET_FIELDS:
        return "set (hidden)" if value else "not set"
    if isinstance(value, str):
        return _USERINFO.sub("***@", value)  # credentials in a store or proxy URL
    return value


def listing(deps: Deps, overrides: dict[str, Any]) -> dict[str, Any]:
    base = deps.base_settings or deps.settings
    rows = []
    for name, info in Settings.model_fields.items():
        if name in overrides:
            source = "override (console)"
        elif name in base.model_fields_set:
            source = "environment"
        else:
            source = "default"
        rows.append(
            {
                "name": name,
                "variable": Settings.variable(name),
                "value": shown(name, getattr(deps.settings, name)),
                "deployed": shown(name, getattr(base, name)),
                "source": source,
                "editable": name in BEHAVIOUR_FIELDS,
                "secret": name in SECRET_FIELDS,
                "description": info.description or "",
                "type": type(getattr(base, name)).__name__,
            }
        )
    return {"settings": rows, "overrides": overrides, "applied_within_seconds": OVERRIDES_TTL}


async def get_settings(request: Request) -> Response:
    deps = await admin_deps(request)
    overrides, _ = await deps.records.read(OVERRIDES_KEY, now=deps.clock())
    return json_response(listing(deps, overrides or {}), headers={"cache-control": "no-store"})


async def put_settings(request: Request) -> Response:
    import orjson

    deps = await admin_deps(request)
    try:
        body = orjson.loads(await read_body(request) or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidRequest("The body must be JSON.") from None
    changes = body.get("overrides") if isinstance(body, dict) else None
    if not isinstance(changes, dict):
        raise InvalidRequest('`overrides` must be an object, e.g. {"retry_budget": 3}.', param="overrides")
    assert deps.base_settings is not None
    for _ in range(5):
        current, version = await deps.records.read(OVERRIDES_KEY, now=deps.clock())
        merged = {**(current or {}), **changes}
        merged = {k: v for k, v in merged.items() if v is not None}
        try:
            deps.base_settings.with_overrides(merged)
        except SettingsError as exc:
            raise InvalidRequest(str(exc), param="overrides") from None
        if await deps.records.write(OVERRIDES_KEY, merged, version=version, now=deps.clock()):
            deps._overrides_version = version + 1
            deps.apply_overrides(merged)
            return json_response(listing(deps, merged))
    raise Overloaded("The settings kept changing under this write; try again.")


routes = [
    Route("/admin/api/settings", get_settings, methods=["GET"]),
    Route("/admin/api/settings", put_settings, methods=["PUT"]),
]
