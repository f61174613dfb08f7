"""POST /v1/responses (OpenAI Responses API) over the chat service; GET explains nothing is stored.

HTTP only: the body becomes a `ChatRequest` (`core.transcode.responses_input`), the turn runs on
the chat service (with the corrective retry when a tool call is required), and
`ResponsesState` turns each batch into Responses events, framed as `event:` + `data:` lines.
The stream always ends with `response.completed`, `response.incomplete` or `response.failed`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.errors import NotFound
from core.services.tool_turns import Turn, open_turn
from core.transcode.responses import ResponsesState
from core.transcode.responses_input import ResponsesRequest, normalize_responses
from functions._answer import chat_service, serve_answer
from functions._app import build_app
from functions._dialect_sse import dialect_sse
from functions._http import deps_of, json_response, read_json, report_ignored

log = logging.getLogger("grokgate.responses")


def _frame(events: list[dict[str, Any]]) -> bytes:
    dumps = orjson.dumps
    return b"".join([b"event: " + e["type"].encode() + b"\ndata: " + dumps(e) + b"\n\n" for e in events])


def _echo_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        return tool  # custom and namespace tools as given
    fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
    return {
        "type": "function",
        "name": fn.get("name"),
        "description": fn.get("description"),
        "parameters": fn.get("parameters") or {"type": "object", "properties": {}},
        "strict": bool(fn.get("strict")),
    }


def _echo(body: ResponsesRequest) -> dict[str, Any]:
    """The request fields a response object repeats (tools that cannot run here are left out)."""
    tools = [
        _echo_tool(tool)
        for tool in body.tools or ()
        if tool.get("type") in ("function", "custom", "namespace")
    ]
    reasoning = body.reasoning
    return {
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "max_tool_calls": body.max_tool_calls,
        "metadata": body.metadata or {},
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "reasoning": {
            "effort": reasoning.effort if reasoning else None,
            "summary": (reasoning.summary or reasoning.generate_summary) if reasoning else None,
        },
        "temperature": body.temperature if body.temperature is not None else 1.0,
        "top_p": body.top_p if body.top_p is not None else 1.0,
        "tool_choice": body.tool_choice if body.tool_choice is not None else "auto",
        "tools": tools,
        "truncation": body.truncation or "disabled",
        "user": body.user,
        "prompt_cache_key": body.prompt_cache_key,
        "safety_identifier": body.safety_identifier,
        "text": {
            "format": (body.text.format if body.text and body.text.format else None) or {"type": "text"},
            "verbosity": (body.text.verbosity if body.text else None) or "medium",
        },
    }


def responses_sse(state: ResponsesState, stream: Turn) -> AsyncGenerator[bytes, None]:
    """Lifecycle head with the first batch, one write per batch, and always a terminal event."""
    return dialect_sse(state, stream, _frame, lambda: state.status != "in_progress", log)


async def create_response(request: Request) -> Response:
    deps = deps_of(request)
    body = await read_json(request, ResponsesRequest)
    ignored: list[str] = []
    chat = normalize_responses(body, deps.sealer, ignored)
    sealed = "reasoning.encrypted_content" in (body.include or ())
    state = ResponsesState(
        body.model,
        echo=_echo(body),
        reasoning=chat.reasoning,
        image_format=deps.settings.image_format,
        seal=deps.sealer.seal if sealed else None,
    )

    async def collect(stream: Turn) -> Response:
        state.handle(await stream.collect())
        return json_response(state.final())

    stream = (lambda opened: responses_sse(state, opened)) if body.stream else None
    response = await serve_answer(request, deps, lambda: open_turn(chat_service(deps), chat), stream, collect)
    return report_ignored(response, ignored)


async def retrieve_response(request: Request) -> Response:
    raise NotFound(
        f"No response with id '{request.path_params['response_id']}': this gateway does not store "
        "responses (it is stateless; 'store' and 'previous_response_id' are refused).",
        param="response_id",
    )


routes = [
    Route("/v1/responses", create_response, methods=["POST"]),
    Route("/v1/responses/{response_id}", retrieve_response, methods=["GET", "DELETE"]),
]
app = build_app(routes)
