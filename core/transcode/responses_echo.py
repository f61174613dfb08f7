"""The request fields an OpenAI Responses object repeats (`instructions`, `tools`, `tool_choice`,
`temperature`, `text` ...), each in the form the response reference gives it, defaults filled in."""

from __future__ import annotations

from typing import Any

from core.transcode.openai_tools import SEARCH_TOOLS
from core.transcode.responses_input import ResponsesRequest


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        return tool  # custom, namespace and web search tools as given
    nested = tool.get("function")
    fn: dict[str, Any] = nested if isinstance(nested, dict) else tool
    return {
        "type": "function",
        "name": fn.get("name"),
        "description": fn.get("description"),
        "parameters": fn.get("parameters") or {"type": "object", "properties": {}},
        "strict": bool(fn.get("strict")),
    }


def echo(body: ResponsesRequest) -> dict[str, Any]:
    """The request fields a response object repeats (tools that cannot run here are left out)."""
    tools = [
        _tool(tool)
        for tool in body.tools or ()
        if tool.get("type") in ("function", "custom", "namespace", *SEARCH_TOOLS)
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
