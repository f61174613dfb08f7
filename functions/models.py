"""GET /v1/models and /v1/models/{id}, in OpenAI's shapes; GET /v1/me, a key's own limits and use."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.catalog import MODELS, get_model
from functions._access import principal_id
from functions._app import build_app
from functions._http import deps_of, json_response
from functions._lambda import lambda_handler


async def list_models(request: Request) -> Response:
    """The catalog, then the configured aliases (`alias_for` names the model that serves each)."""
    aliases = deps_of(request).settings.aliases
    return json_response({"object": "list", "data": [m.to_openai() for m in MODELS] + aliases.listing()})


async def retrieve_model(request: Request) -> Response:
    name = request.path_params["model_id"]
    alias = deps_of(request).settings.aliases.match(name)
    if alias is not None:
        return json_response(alias.model_object(name))
    return json_response(get_model(name).to_openai())


async def me(request: Request) -> Response:
    """The calling key: its id, allowlist and limits, and today's use (a root key has no limits)."""
    deps = deps_of(request)
    key = request.scope.get("state", {}).get("client_key")
    key_id = principal_id(request.scope, bool(deps.settings.api_keys))
    today = await deps.usage_ledger.today(key_id)
    body = (
        key.public() if key is not None else {"id": key_id, "object": "client_key", "models": [], "rpm": None}
    )
    return json_response({**body, "usage_today": today})


routes = [
    Route("/v1/me", me, methods=["GET"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model_id:path}", retrieve_model, methods=["GET"]),
]
app = build_app(routes)
handler = lambda_handler(app)
