"""A minimal MCP server over stdio for the Codex test: one tool, `lookup`, whose result carries the
simulator's next directive. JSON-RPC 2.0, one message per line (MCP's stdio transport)."""

from __future__ import annotations

import json
import sys
from typing import Any

TOOL = {
    "name": "lookup",
    "description": "Look a word up in the glossary.",
    "inputSchema": {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]},
}


def answer(message: dict[str, Any]) -> dict[str, Any] | None:
    method, params = message.get("method"), message.get("params") or {}
    if method == "initialize":
        result: dict[str, Any] = {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "glossary", "version": "1.0"},
        }
    elif method == "tools/list":
        result = {"tools": [TOOL]}
    elif method == "tools/call":
        word = (params.get("arguments") or {}).get("input", "")
        result = {
            "content": [{"type": "text", "text": f"{word}: found #sim think=0 say=glossary-{word} (end)"}]
        }
    else:
        result = {}
    return None if "id" not in message else {"jsonrpc": "2.0", "id": message["id"], "result": result}


def main() -> None:
    for line in sys.stdin:
        if line.strip():
            reply = answer(json.loads(line))
            if reply is not None:
                sys.stdout.write(json.dumps(reply) + "\n")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
