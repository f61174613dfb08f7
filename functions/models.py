"""GET /v1/models and /v1/models/{id}, in OpenAI's shapes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.catalog import MODELS, get_model
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


routes = [
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model_id:path}", retrieve_model, methods=["GET"]),
]
app = build_app(routes)
handler = lambda_handler(app)
