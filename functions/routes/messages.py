"""POST /v1/messages and /v1/messages/count_tokens (Anthropic Messages API) over the chat service.

HTTP only. Errors on these paths are rendered in Anthropic's envelope by `build_app`; inside a
stream a failure is an `event: error`. The heartbeat during long silences is Anthropic's own
`ping` event, which the SDKs skip. `anthropic-version` is accepted whatever its value (there is
one wire format); `x-api-key` or a Bearer key authenticates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from functions._access import allow
from functions._answer import serve_answer
from functions._http import deps_of, json_response, read_json
from functions._sse import MESSAGES, sse

if TYPE_CHECKING:
    from core.services.tool_turns import Turn

PING = b'event: ping\ndata: {"type":"ping"}\n\n'


async def create_message(request: Request) -> Response:
    # The dialect loads with the route's first request (see functions/routes/chat.py).
    from core.services.tool_turns import open_turn
    from core.transcode.anthropic import MessagesState
    from core.transcode.anthropic_input import MessagesRequest, normalize_messages
    from core.transcode.usage import estimate_usage

    deps = deps_of(request)
    body = await read_json(request, MessagesRequest)
    allow(request, body.model)
    chat = normalize_messages(body, max_tokens=body.max_tokens)
    prompt = estimate_usage(chat.message, "", attachments=len(chat.attachments)).prompt_tokens
    omit = body.thinking is not None and body.thinking.display == "omitted"
    state = MessagesState(
        body.model,
        input_tokens=prompt,
        thinking=chat.reasoning and deps.settings.show_reasoning,
        omit_thinking=omit,
        image_format=deps.settings.image_format,
        web_search=chat.web_search,
    )

    async def collect(stream: Turn) -> Response:
        state.handle(await stream.collect())
        return json_response(state.final())

    stream = (lambda opened: sse(state, opened, MESSAGES)) if body.stream else None
    return await serve_answer(
        request, deps, lambda: open_turn(deps.chat_service, chat), stream, collect, ping=PING
    )


async def count_tokens(request: Request) -> Response:
    from core.transcode.anthropic_input import CountTokensRequest, normalize_messages
    from core.transcode.usage import estimate_usage

    body = await read_json(request, CountTokensRequest)
    allow(request, body.model)
    chat = normalize_messages(body)
    usage = estimate_usage(chat.message, "", attachments=len(chat.attachments))
    return json_response({"input_tokens": usage.prompt_tokens})


routes = [
    Route("/v1/messages", create_message, methods=["POST"]),
    Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
]
