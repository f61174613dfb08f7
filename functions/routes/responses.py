"""The OpenAI Responses API over the chat service: create, and the stored responses' retrieve,
delete and input items (`core.services.stored_responses`).

HTTP only: the body becomes a `ChatRequest` (`core.transcode.responses_input`), the turn runs on
the chat service (with the corrective retry when a tool call is required), and
`ResponsesState` turns each batch into Responses events, framed as `event:` + `data:` lines.
The stream always ends with `response.completed`, `response.incomplete` or `response.failed`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.errors import InvalidRequest, StoreUnavailable
from functions._access import allow
from functions._answer import serve_answer
from functions._app import presented_key
from functions._http import deps_of, json_response, read_json
from functions._sse import RESPONSES, sse

if TYPE_CHECKING:
    from core.services.tool_turns import Turn

log = logging.getLogger("grokgate.responses")


def _is_reference(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == "item_reference"


def _owner(request: Request) -> str:
    from core.services.stored_responses import owner_of  # with the first call: cold start stays as it was

    return owner_of(presented_key(dict(request.scope["headers"])))


async def create_response(request: Request) -> Response:
    # The dialect loads with the route's first request (see functions/routes/chat.py).
    from core.services.tool_turns import open_turn
    from core.transcode.responses import ResponsesState, new_id
    from core.transcode.responses_echo import echo
    from core.transcode.responses_input import ResponsesRequest, normalize_responses

    deps = deps_of(request)
    body = await read_json(request, ResponsesRequest)
    allow(request, body.model)
    owner = _owner(request)
    stored = deps.responses
    keep = body.store is not False and stored.enabled
    history: list[dict[str, Any]] = []
    if body.previous_response_id is not None:
        history = await stored.conversation(body.previous_response_id, owner)
    if isinstance(body.input, list) and any(_is_reference(item) for item in body.input):
        body.input = await stored.resolve(body.input, owner)  # the stored items they name
    chat = normalize_responses(body, deps.sealer, body.ignored, history)
    response_id = new_id("resp")
    items: list[dict[str, Any]] = []
    if keep:
        from core.services.stored_responses import input_items

        items = input_items(body.input, response_id)
    sealed = "reasoning.encrypted_content" in (body.include or ())
    repeated = {**echo(body), "store": keep, "previous_response_id": body.previous_response_id}
    state = ResponsesState(
        body.model,
        id=response_id,
        echo=repeated,
        reasoning=chat.reasoning and deps.settings.show_reasoning,
        image_format=deps.settings.image_format,
        seal=deps.sealer.seal if sealed else None,
        web_search=chat.web_search,
        sources="web_search_call.action.sources" in (body.include or ()),
    )

    async def save() -> None:
        """Keep the finished response (a failure to store is logged: the answer was given)."""
        if not keep or state.status == "in_progress":
            return
        try:
            await stored.save(state.response(), items, history, owner)
        except StoreUnavailable as exc:
            log.error("response %s was not stored: %s", state.id, exc.message)

    async def collect(stream: Turn) -> Response:
        state.handle(await stream.collect())
        final = state.final()
        await save()
        return json_response(final)

    def stream(opened: Turn) -> AsyncGenerator[bytes, None]:
        return sse(state, opened, RESPONSES, before_end=save)

    return await serve_answer(
        request, deps, lambda: open_turn(deps.chat_service, chat), stream if body.stream else None, collect
    )


async def retrieve_response(request: Request) -> Response:
    """`GET /v1/responses/{id}`: the stored response (`include` and `include_obfuscation` are
    accepted; `stream=true` replays only background responses, which this gateway does not run)."""
    if request.query_params.get("stream", "false").lower() == "true":
        raise InvalidRequest(
            "'stream' is only for background responses, which this gateway does not run; retrieve without it.",
            param="stream",
        )
    deps = deps_of(request)
    found = await deps.responses.load(request.path_params["response_id"], _owner(request))
    return json_response(found.response)


async def delete_response(request: Request) -> Response:
    deps = deps_of(request)
    return json_response(await deps.responses.delete(request.path_params["response_id"], _owner(request)))


async def list_input_items(request: Request) -> Response:
    query = request.query_params
    raw_limit = query.get("limit", "20")
    try:
        limit = int(raw_limit)
    except ValueError:
        raise InvalidRequest("'limit' must be an integer between 1 and 100.", param="limit") from None
    deps = deps_of(request)
    page = await deps.responses.list_input_items(
        request.path_params["response_id"],
        _owner(request),
        after=query.get("after") or None,
        before=query.get("before") or None,
        limit=limit,
        order=query.get("order", "desc"),
    )
    return json_response(page)


routes = [
    Route("/v1/responses", create_response, methods=["POST"]),
    Route("/v1/responses/{response_id}", retrieve_response, methods=["GET"]),
    Route("/v1/responses/{response_id}", delete_response, methods=["DELETE"]),
    Route("/v1/responses/{response_id}/input_items", list_input_items, methods=["GET"]),
]
