"""Normalised requests -> upstream request bodies (protocol §3.1 chat, §6.1 upload).

Pure builders: the adapter only serialises and sends what these return. The public model id
never goes upstream for chat, only the mode; OpenAI sampling knobs have no upstream field.
"""

from __future__ import annotations

import base64
from typing import Any

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
) -> dict[str, Any]:
    """The §3.1 body of a new, temporary conversation holding the whole flattened prompt."""
    body: dict[str, Any] = {
        "collectionIds": [],
        "connectors": [],
        "deviceEnvInfo": dict(DEVICE_ENV),
        "disableMemory": disable_memory,
        "disableSearch": False,
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
    """The §6.1 upload body: base64 content without a `data:` prefix."""
    return {"fileName": name, "fileMimeType": mime, "content": base64.b64encode(data).decode("ascii")}


def upload_reference(answer: Any) -> str | None:
    """The attachment id of an upload answer (§6.1, §6.2), or None if it names none."""
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
