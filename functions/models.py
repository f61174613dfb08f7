"""GET /v1/models and /v1/models/{id}, in OpenAI's shapes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.catalog import MODELS, get_model
from functions._app import build_app
from functions._http import json_response
from functions._lambda import lambda_handler


async def list_models(request: Request) -> Response:
    return json_response({"object": "list", "data": [model.to_openai() for model in MODELS]})


async def retrieve_model(request: Request) -> Response:
    return json_response(get_model(request.path_params["model_id"]).to_openai())


routes = [
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model_id:path}", retrieve_model, methods=["GET"]),
]
app = build_app(routes)
handler = lambda_handler(app)
