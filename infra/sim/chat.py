"""E1 chat and E2 follow-up: body validation and the scripted NDJSON stream (docs/protocol.md)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from infra.sim import frames, media
from infra.sim.accounts import CHAT_MODES, Account
from infra.sim.gate import admit
from infra.sim.script import Answer, Card, Script, SearchResults, Think, ToolCard, build
from infra.sim.state import SimState
from infra.sim.wire import ANTI_BOT, RATE_LIMITED, USAGE_LIMIT, NDJSONStream, bad_request, json_response

_BOOL_FIELDS = (
    "disableMemory",
    "disableSearch",
    "enableImageGeneration",
    "enableImageStreaming",
    "enableSideBySide",
    "forceConcise",
    "isAsyncChat",
    "returnImageBytes",
    "sendFinalMetadata",
    "temporary",
)


def validate_chat(body: dict[str, Any]) -> str | None:
    """The reason a chat body is rejected, or None. Required: message and a known modeId."""
    if "message" not in body:
        return "Invalid request: missing required field `message`"
    if not isinstance(body["message"], str):
        return "Invalid request: `message` must be a string"
    if "modeId" not in body:
        return "Invalid request: missing required field `modeId`"
    if body["modeId"] not in CHAT_MODES:
        return f"Invalid request: unknown modeId {body['modeId']!r}"
    for key in _BOOL_FIELDS:
        if key in body and not isinstance(body[key], bool):
            return f"Invalid request: `{key}` must be a boolean"
    attachments = body.get("fileAttachments", [])
    if not isinstance(attachments, list) or not all(isinstance(a, str) for a in attachments):
        return "Invalid request: `fileAttachments` must be a list of strings"
    if "imageGenerationCount" in body and not isinstance(body["imageGenerationCount"], int):
        return "Invalid request: `imageGenerationCount` must be an integer"
    return None


def _tool_card_token(card: ToolCard) -> str:
    args = json.dumps({"query": card.query})
    return (
        f"<xai:tool_usage_card><xai:tool_usage_card_id>{card.card_id}</xai:tool_usage_card_id>"
        f"<xai:tool_name>web_search</xai:tool_name><xai:tool_args><![CDATA[{args}]]></xai:tool_args></xai:tool_usage_card>"
    )


def render(script: Script, response_id: str) -> tuple[list[bytes], list[bool]]:
    """Frames for the script's items, and which of them are tokens (paced by delay_ms, counted by drops)."""
    out: list[bytes] = []
    is_token: list[bool] = []
    rsp = frames.response
    for item in script.items:
        if isinstance(item, Answer):
            out.append(
                rsp(
                    {
                        "token": item.text,
                        "isThinking": False,
                        "isSoftStop": False,
                        "responseId": response_id,
                        "messageTag": "final",
                    }
                )
            )
            is_token.append(True)
        elif isinstance(item, Think):
            out.append(
                rsp(
                    {
                        "token": item.text,
                        "isThinking": True,
                        "isSoftStop": False,
                        "responseId": response_id,
                        "messageTag": item.tag,
                        "rolloutId": item.rollout,
                        "messageStepId": item.step,
                    }
                )
            )
            is_token.append(True)
        elif isinstance(item, Card):
            card = {"jsonData": orjson.dumps(item.data).decode()}
            out.append(
                rsp(
                    {
                        "isThinking": False,
                        "responseId": response_id,
                        "messageTag": "final",
                        "cardAttachment": card,
                    }
                )
            )
            is_token.append(False)
        elif isinstance(item, ToolCard):
            tool = {"toolUsageCardId": item.card_id, "webSearch": {"args": {"query": item.query}}}
            out.append(
                rsp(
                    {
                        "token": _tool_card_token(item),
                        "isThinking": True,
                        "responseId": response_id,
                        "messageTag": "tool_usage_card",
                        "rolloutId": item.rollout,
                        "messageStepId": item.step,
                        "toolUsageCardId": item.card_id,
                        "toolUsageCard": tool,
                    }
                )
            )
            is_token.append(False)
        elif isinstance(item, SearchResults):
            results = {"results": list(item.results)}
            out.append(
                rsp(
                    {
                        "toolUsageCardId": item.card_id,
                        "isThinking": True,
                        "responseId": response_id,
                        "messageTag": "tool_usage_card_result",
                        "webSearchResults": results,
                    }
                )
            )
            out.append(
                rsp(
                    {
                        "token": json.dumps(results),
                        "isThinking": True,
                        "responseId": response_id,
                        "messageTag": "raw_function_result",
                    }
                )
            )
            is_token += [False, False]
    return out, is_token


def stream_chat(
    state: SimState, account: Account, body: dict[str, Any], conversation_id: str | None
) -> Response | NDJSONStream:
    """Everything after the gate for a chat turn: directives, quota, then the frame script."""
    message: str = body["message"]
    mode: str = body["modeId"]
    script = build(
        message, mode, account.user_id, body.get("imageGenerationCount"), not body.get("disableSearch", False)
    )
    directive = script.directive
    if directive.status:
        return json_response(
            {
                "error": {
                    "code": 13,
                    "message": f"Simulated upstream status {directive.status}",
                    "details": [],
                }
            },
            directive.status,
        )
    if not state.accounts.consume(account, mode):
        return json_response(RATE_LIMITED, 429)
    new = conversation_id is None
    cid = conversation_id or state.conversations.create(account.token)
    user_rid, rid = str(uuid.uuid4()), str(uuid.uuid4())
    conv = state.conversations.get(cid)
    if conv is not None:
        conv.response_ids.update((user_rid, rid))
    head = [frames.conversation(cid, body.get("temporary", True))] if new else []
    head.append(frames.user_response(user_rid, message, body.get("fileAttachments", [])))
    ttfb = directive.ttfb_ms / 1000
    if account.antibot:
        return NDJSONStream([frames.line(ANTI_BOT)], ttfb=ttfb)
    if directive.inband_error or directive.usage_limit:
        return NDJSONStream(
            [*head, frames.line(ANTI_BOT if directive.inband_error else USAGE_LIMIT)], ttfb=ttfb
        )
    for n, path in enumerate(script.images):
        state.assets.generated_image(account.user_id, path, n)
    body_lines, is_token = render(script, rid)
    errors = [{"message": "Simulated stream error", "code": "STREAM_ERROR"}] if directive.stream_error else []
    tail = [
        frames.soft_stop(rid),
        frames.final_metadata(),
        frames.model_response(
            rid,
            user_rid,
            script.answer,
            images=script.images,
            cards=[orjson.dumps(c).decode() for c in script.cards],
            results=script.results,
            stream_errors=errors,
        ),
    ]
    lines = head + body_lines + tail
    flags = [False] * len(head) + is_token + [False] * len(tail)
    drop_after = None
    if directive.midstream_drop is not None:
        seen = 0
        drop_after = len(lines)
        for i, flag in enumerate(flags):
            if seen >= directive.midstream_drop:
                drop_after = i
                break
            seen += flag
    delays = None
    if directive.delay_ms or directive.per_frame:  # one write per frame, paused before tokens or not
        delays = [directive.delay_ms / 1000 if f else 0.0 for f in flags]
    return NDJSONStream(lines, delays, drop_after, ttfb)


async def _json_body(request: Request) -> dict[str, Any] | Response:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return bad_request("Invalid request: body is not valid JSON")
    return body if isinstance(body, dict) else bad_request("Invalid request: body must be a JSON object")


def _rest_chat_refused(state: SimState, account: Account) -> Response | None:
    """REST chat refused while the gateway WebSocket still works: an account REST distrusts
    (403 code 7, as grok.com answers a client its anti-bot rules reject), or the REST endpoint
    retired server-wide (`SimConfig.rest_chat_status`, e.g. 404 or 410)."""
    if state.config.rest_chat_status:
        return bad_request("This endpoint is no longer available", state.config.rest_chat_status, 5)
    if account.rest_antibot:
        return bad_request("Request rejected by anti-bot rules", 403, 7)
    return None


def routes(state: SimState) -> list[Route]:
    async def new_conversation(request: Request) -> Response | NDJSONStream:
        account = await admit(state, request, statsig=True, generation=True)
        if isinstance(account, Response):
            return account
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        kind = media.kind(body)
        if kind is not None:
            return media.generate(state, account, body, kind)
        if "modelName" in body and "modeId" not in body:
            return bad_request(f"Invalid request: unsupported modelName {body['modelName']!r}")
        refused = _rest_chat_refused(state, account)
        if refused is not None:
            return refused
        problem = validate_chat(body)
        if problem is None:
            problem = _check_attachments(state, account, body)
        if problem:
            return bad_request(problem)
        return stream_chat(state, account, body, None)

    async def follow_up(request: Request) -> Response | NDJSONStream:
        account = await admit(state, request, statsig=True, generation=True)
        if isinstance(account, Response):
            return account
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        problem = validate_chat(body) or _check_attachments(state, account, body)
        if problem is None and not isinstance(body.get("responseId"), str):
            problem = "Invalid request: missing required field `responseId`"
        if problem:
            return bad_request(problem)
        cid = request.path_params["conversation_id"]
        conv = state.conversations.get(cid)
        if conv is None or conv.owner != account.token:
            return bad_request("Conversation not found", 404, 5)
        if body["responseId"] not in conv.response_ids:
            return bad_request("Parent response not found in conversation", 404, 5)
        return stream_chat(state, account, body, cid)

    return [
        Route("/rest/app-chat/conversations/new", new_conversation, methods=["POST"]),
        Route("/rest/app-chat/conversations/{conversation_id}/responses", follow_up, methods=["POST"]),
    ]


def _check_attachments(state: SimState, account: Account, body: dict[str, Any]) -> str | None:
    for file_id in body.get("fileAttachments", []):
        asset = state.assets.by_id(file_id)
        if asset is None or asset.owner != account.user_id:
            return f"Invalid request: unknown file attachment {file_id!r}"
    return None
