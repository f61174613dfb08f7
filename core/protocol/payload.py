"""Normalised requests -> upstream request bodies (docs/protocol.md#chat-body, E5).

Pure builders: the adapter only serialises and sends what these return. The public model id
never goes upstream for chat, only the mode; OpenAI sampling knobs have no upstream field.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from core.errors import RequestTooLarge
from core.protocol.frames import MAX_LINE

DEVICE_ENV = {
    "darkModeEnabled": False,
    "devicePixelRatio": 2,
    "screenHeight": 1329,
    "screenWidth": 2056,
    "viewportHeight": 1083,
    "viewportWidth": 2056,
}
TOOL_OVERRIDES = {
    "gmailSearch": False,
    "googleCalendarSearch": False,
    "outlookSearch": False,
    "outlookCalendarSearch": False,
    "googleDriveSearch": False,
}

CHAT_PATH = "/rest/app-chat/conversations/new"
UPLOAD_PATH = "/rest/app-chat/upload-file"


def chat_body(
    message: str,
    mode: str,
    *,
    file_ids: list[str] | tuple[str, ...] = (),
    temporary: bool = True,
    disable_memory: bool = True,
    custom_personality: str | None = None,
    disable_search: bool = False,
) -> dict[str, Any]:
    """The E1 body of a new, temporary conversation holding the whole flattened prompt."""
    body: dict[str, Any] = {
        "collectionIds": [],
        "connectors": [],
        "deviceEnvInfo": dict(DEVICE_ENV),
        "disableMemory": disable_memory,
        "disableSearch": disable_search,
        "disableSelfHarmShortCircuit": False,
        "disableTextFollowUps": False,
        "enableImageGeneration": True,
        "enableImageStreaming": True,
        "enableSideBySide": True,
        "fileAttachments": list(file_ids),
        "forceConcise": False,
        "forceSideBySide": False,
        "imageAttachments": [],
        "imageGenerationCount": 2,
        "isAsyncChat": False,
        "message": message,
        "modeId": mode,
        "responseMetadata": {},
        "returnImageBytes": False,
        "returnRawGrokInXaiRequest": False,
        "searchAllConnectors": False,
        "sendFinalMetadata": True,
        "temporary": temporary,
        "toolOverrides": dict(TOOL_OVERRIDES),
    }
    if custom_personality:
        body["customPersonality"] = custom_personality
    return body


def upload_body(name: str, mime: str, data: bytes) -> dict[str, Any]:
    """The E5 upload body: base64 content without a `data:` prefix."""
    return {"fileName": name, "fileMimeType": mime, "content": base64.b64encode(data).decode("ascii")}


def upload_reference(answer: Any) -> str | None:
    """The attachment id of an upload answer (E5, E6), or None if it names none."""
    if not isinstance(answer, dict):
        return None
    if answer.get("terminalError"):
        return None
    meta = answer.get("fileMetadata")
    if isinstance(meta, dict):
        for key in ("fileMetadataId", "fileId"):
            if isinstance(meta.get(key), str) and meta[key]:
                return str(meta[key])
    for key in ("fileMetadataId", "fileId", "uploadId"):
        if isinstance(answer.get(key), str) and answer[key]:
            return str(answer[key])
    return None


# The upstream echoes the message in one NDJSON line (F2), and a line may be 8 MiB
# at most (docs/protocol.md#lines): a longer message cannot be answered, on any account.
_ECHO_OVERHEAD = 16 * 1024


def check_message_size(message: str, max_line: int = MAX_LINE) -> None:
    """A 413 when the message, as the upstream would echo it, exceeds a stream line's limit."""
    budget = max_line - _ECHO_OVERHEAD
    if len(message) * 6 <= budget:  # no character escapes to more than six bytes
        return
    size = len(orjson.dumps(message))
    if size > budget:
        raise RequestTooLarge(
            f"The prompt is too large for the upstream: {size} bytes once encoded, {budget} at most "
            "(the upstream echoes the whole prompt in one stream line). Shorten the conversation."
        )
