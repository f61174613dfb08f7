"""POST /v1/chat/completions: OpenAI's chat completions over the chat service.

HTTP only: the body becomes a `ChatRequest`, the service yields event batches, the OpenAI
accumulator turns each batch into chunks, and each batch goes out as one write (`functions._sse`). Disconnects and
heartbeats are `functions._answer`'s. The chat deployable (functions/chat.py) serves these
routes with the Responses and Messages ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.catalog import Capability, Model, get_model
from core.errors import GatewayError
from functions._access import allow
from functions._answer import serve_answer
from functions._http import base_url, deps_of, json_response, read_json
from functions._sse import CHAT, sse

if TYPE_CHECKING:
    from core.services.tool_turns import Turn


def _media_model(model_id: str) -> Model | None:
    try:
        model = get_model(model_id)
    except GatewayError:
        return None
    return model if model.capability in (Capability.IMAGE, Capability.VIDEO) else None


async def chat_completions(request: Request) -> Response:
    # The dialect loads with the route's first request: an instance that serves only Responses or
    # Messages never imports it (the chat deployable serves all three).
    from core.services.tool_turns import open_turn
    from core.transcode.openai_chat import ChatCompletionRequest, ChatCompletionState, normalize_request

    deps = deps_of(request)
    body = await read_json(request, ChatCompletionRequest)
    allow(request, body.model)
    media = _media_model(body.model)
    if media is not None:  # images and videos for chat-only clients
        from functions.routes import chat_media

        return await chat_media.serve(request, deps, body, media, base_url(request, deps))
    chat = normalize_request(body)
    state = ChatCompletionState(
        body.model,
        reasoning=chat.reasoning and deps.settings.show_reasoning,
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
        image_format=deps.settings.image_format,
        collect=not body.stream,
    )

    async def collect(stream: Turn) -> Response:
        state.handle(await stream.collect())
        return json_response(state.final())

    return await serve_answer(
        request,
        deps,
        lambda: open_turn(deps.chat_service, chat),
        (lambda stream: sse(state, stream, CHAT)) if body.stream else None,
        collect,
    )


routes = [Route("/v1/chat/completions", chat_completions, methods=["POST"])]
