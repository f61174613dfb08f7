"""NDJSON frame builders for the REST stream (docs/protocol.md#frame-kinds); one object per line."""

from __future__ import annotations

from typing import Any

import orjson

from infra.sim.assets import iso


def line(obj: Any) -> bytes:
    return orjson.dumps(obj) + b"\n"


def response(payload: dict[str, Any]) -> bytes:
    return orjson.dumps({"result": {"response": payload}}) + b"\n"


def conversation(conversation_id: str, temporary: bool) -> bytes:
    """F1, the first line of a new conversation."""
    now = iso()
    return line(
        {
            "result": {
                "conversation": {
                    "conversationId": conversation_id,
                    "title": "New conversation",
                    "starred": False,
                    "createTime": now,
                    "modifyTime": now,
                    "systemPromptName": "",
                    "temporary": temporary,
                    "mediaTypes": [],
                }
            }
        }
    )


def user_response(response_id: str, message: str, file_attachments: list[str]) -> bytes:
    """F2, the echo of the user turn; its responseId is the parent for follow-ups."""
    return response(
        {
            "userResponse": {
                "responseId": response_id,
                "message": message,
                "sender": "human",
                "createTime": iso(),
                "partial": False,
                "fileAttachments": file_attachments,
            }
        }
    )


def soft_stop(response_id: str) -> bytes:
    return response({"isSoftStop": True, "responseId": response_id})


def final_metadata() -> bytes:
    return response({"finalMetadata": {"followUpSuggestions": [], "feedbackLabels": [], "toolsUsed": {}}})


def model_response(
    response_id: str,
    parent_id: str,
    message: str,
    *,
    images: list[str] | tuple[str, ...] = (),
    files: list[str] | tuple[str, ...] = (),
    cards: list[str] | tuple[str, ...] = (),
    results: list[dict[str, str]] | tuple[dict[str, str], ...] = (),
    stream_errors: list[Any] | tuple[Any, ...] = (),
) -> bytes:
    """F11, the full assistant message."""
    return response(
        {
            "modelResponse": {
                "responseId": response_id,
                "message": message,
                "sender": "assistant",
                "createTime": iso(),
                "parentResponseId": parent_id,
                "manual": False,
                "partial": False,
                "shared": False,
                "query": "",
                "queryType": "",
                "webSearchResults": list(results),
                "xpostIds": [],
                "xposts": [],
                "generatedImageUrls": list(images),
                "imageAttachments": [],
                "fileAttachments": list(files),
                "cardAttachmentsJson": list(cards),
                "fileUris": [],
                "fileAttachmentsMetadata": [],
                "isControl": False,
                "steps": [],
                "mediaTypes": [],
                "streamErrors": list(stream_errors),
            }
        }
    )
