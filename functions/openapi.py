"""`GET /openapi.json`: the OpenAPI 3.1 document of the app that serves it.

Generated, not written: every `/v1` and `/admin/api` route of the app is listed with its
methods and path parameters; request bodies come from the pydantic request models the routes
validate with (`model_json_schema`), and every operation documents its error envelope (OpenAI's
`{"error": {...}}`, or Anthropic's `{"type": "error", "error": {...}}` on /v1/messages). Built on
first request and kept (it depends only on the code), so cold starts do not pay for it.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from functions._http import json_response

_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")


def _request_models() -> dict[tuple[str, str], type[BaseModel]]:
    from core.transcode.anthropic_input import CountTokensRequest, MessagesRequest
    from core.transcode.openai_chat import ChatCompletionRequest
    from core.transcode.responses_input import ResponsesRequest
    from functions.routes.images import GenerationBody

    return {
        ("POST", "/v1/chat/completions"): ChatCompletionRequest,
        ("POST", "/v1/responses"): ResponsesRequest,
        ("POST", "/v1/messages"): MessagesRequest,
        ("POST", "/v1/messages/count_tokens"): CountTokensRequest,
        ("POST", "/v1/images/generations"): GenerationBody,
    }


# Bodies the routes read without a model: how they are documented.
_OTHER_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/images/edits"): {"multipart/form-data": {"schema": {"type": "object"}}},
    ("POST", "/v1/videos"): {
        "application/json": {"schema": {"type": "object"}},
        "multipart/form-data": {"schema": {"type": "object"}},
    },
    ("POST", "/v1/videos/{video_id}/remix"): {"application/json": {"schema": {"type": "object"}}},
    ("POST", "/admin/api/accounts/import"): {"text/plain": {"schema": {"type": "string"}}},
}

_OPENAI_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
_ANTHROPIC_ERROR = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}


def documented(path: str) -> bool:
    return path.startswith(("/v1/", "/admin/api/")) or path in ("/v1", "/admin/api")


def build_document(routes: list[BaseRoute], version: str) -> dict[str, Any]:
    """The OpenAPI document of `routes` (their /v1 and /admin/api part)."""
    models = _request_models()
    components: dict[str, Any] = {"OpenAIError": _OPENAI_ERROR, "AnthropicError": _ANTHROPIC_ERROR}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route) or not documented(route.path):
            continue
        path = _PARAM.sub(r"{\1}", route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            paths.setdefault(path, {})[method.lower()] = _operation(method, path, route, models, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "grokgate",
            "version": version,
            "description": "OpenAI- and Anthropic-compatible APIs over Grok's web app.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
    }


def _operation(
    method: str,
    path: str,
    route: Route,
    models: dict[tuple[str, str], type[BaseModel]],
    components: dict[str, Any],
) -> dict[str, Any]:
    error = "AnthropicError" if path.startswith("/v1/messages") else "OpenAIError"
    error_body = {"application/json": {"schema": {"$ref": f"#/components/schemas/{error}"}}}
    op: dict[str, Any] = {
        "operationId": method.lower() + re.sub(r"[^A-Za-z0-9]+", "_", path).rstrip("_"),
        "summary": _summary(route),
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(path)
        ],
        "responses": {
            "200": {"description": "Success (JSON, or an SSE stream when `stream` is true)."},
            "4XX": {"description": "The client's error, in the route's envelope.", "content": error_body},
            "5XX": {"description": "The gateway's or the upstream's error.", "content": error_body},
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }
    model = models.get((method, path))
    if model is not None:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        if "model" in schema.get("properties", {}):
            from core.catalog import MODELS  # the ids /v1/models lists

            schema["properties"]["model"] = {"type": "string", "enum": [m.id for m in MODELS]}
        components[model.__name__] = schema
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    elif (method, path) in _OTHER_BODIES:
        op["requestBody"] = {"required": True, "content": _OTHER_BODIES[(method, path)]}
    return op


async def openapi_json(request: Request) -> Response:
    """The OpenAPI document of this app (no auth: it holds no secret)."""
    state = request.app.state
    document = getattr(state, "openapi", None)
    if document is None:
        from functions._app import VERSION

        document = build_document(list(request.app.routes), VERSION)
        state.openapi = document
    return json_response(document)


def _summary(route: Route) -> str:
    handler = getattr(route.endpoint, "handler", route.endpoint)  # _app wraps handlers
    doc = (getattr(handler, "__doc__", None) or "").strip()
    return doc.split("\n")[0] if doc else route.name
