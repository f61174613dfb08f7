"""Small client-side helpers for the simulator's own tests (they parse the wire independently)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

STATSIG = "ZTpUeXBlRXJyb3I6IENhbm5vdCByZWFkIHByb3BlcnRpZXMgb2YgdW5kZWZpbmVkIChyZWFkaW5nICdjaGlsZE5vZGVzJyk="
CHAT = "/rest/app-chat/conversations/new"


def cookies(token: str) -> dict[str, str]:
    return {"sso": token, "sso-rw": token}


def headers(token: str, statsig: bool = True) -> dict[str, str]:
    out = {"cookie": f"sso={token}; sso-rw={token}"}
    if statsig:
        out["x-statsig-id"] = STATSIG
    return out


def chat_body(message: str, mode: str = "fast", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "collectionIds": [],
        "connectors": [],
        "disableMemory": True,
        "disableSearch": False,
        "enableImageGeneration": True,
        "enableImageStreaming": True,
        "fileAttachments": [],
        "imageAttachments": [],
        "imageGenerationCount": 2,
        "isAsyncChat": False,
        "message": message,
        "modeId": mode,
        "responseMetadata": {},
        "sendFinalMetadata": True,
        "temporary": True,
    }
    body.update(extra)
    return body


def frames(text: str) -> list[dict[str, Any]]:
    assert text.endswith("\n")
    return [orjson.loads(line) for line in text.splitlines()]


def responses(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f["result"]["response"] for f in lines if "response" in f.get("result", {})]


def answer_of(lines: list[dict[str, Any]]) -> str:
    return "".join(
        r["token"]
        for r in responses(lines)
        if "token" in r and not r.get("isThinking") and r.get("messageTag") == "final"
    )


def reasoning_of(lines: list[dict[str, Any]]) -> str:
    return "".join(
        r["token"]
        for r in responses(lines)
        if r.get("isThinking") and r.get("messageTag") in ("header", "summary")
    )


def chat(client: httpx.Client, token: str, message: str, mode: str = "fast", **extra: Any) -> httpx.Response:
    return client.post(CHAT, json=chat_body(message, mode, **extra), headers=headers(token))
