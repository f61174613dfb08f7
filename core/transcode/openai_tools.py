"""OpenAI tool definitions (chat completions and Responses) -> one `ToolSpec` for the emulation.

Client-run tools are offered to the model: `function` (Responses' flat form and chat's wrapped
one), `custom` (free-form text input, optionally with a grammar) and `namespace` (a group of
functions and custom tools; each member is shown as `namespace.name` and its calls carry the
namespace back). Tools that would run on OpenAI's servers (`web_search`, `tool_search`,
`file_search`, `code_interpreter`, `mcp`, ...) cannot run here: they are dropped and named in
`ignored`, which the route reports in `x-grokgate-ignored-params`, so a client that always sends
them keeps working. `web_search` (any of its type names) is honoured instead: it switches on the
upstream's own search, reported as `web_search_call` items (`wants_web_search`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.errors import InvalidRequest
from core.transcode.depth import check_depth
from core.transcode.tools import ChoiceMode, Tool, ToolChoice, ToolSpec

SEARCH_TOOLS = ("web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11")


def wants_web_search(tools: list[Any] | None) -> bool:
    """The Responses `tools` offer OpenAI's web search (any of its type names)."""
    return any(isinstance(t, dict) and t.get("type") in SEARCH_TOOLS for t in tools or ())


def _unsupported(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"'{param}' is not supported: {why}", param=param, code="unsupported_parameter")


def _function(raw: dict[str, Any], param: str, namespace: str = "") -> Tool:
    inner = raw.get("function")
    fn: dict[str, Any] = inner if isinstance(inner, dict) else raw
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"'{param}.name' is required.", param=f"{param}.name")
    params = fn.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise InvalidRequest(
            f"'{param}.parameters' must be a JSON schema object.", param=f"{param}.parameters"
        )
    if params is not None:
        check_depth(params, f"{param}.parameters")
    strict = fn.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise InvalidRequest(f"'{param}.strict' must be a boolean.", param=f"{param}.strict")
    return Tool(name, _description(fn, param), params or {}, bool(strict), namespace=namespace)


def _custom(raw: dict[str, Any], param: str, namespace: str = "") -> Tool:
    inner = raw.get("custom")  # chat completions wraps it: {type: custom, custom: {name, ...}}
    spec: dict[str, Any] = inner if isinstance(inner, dict) else raw
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"'{param}.name' is required.", param=f"{param}.name")
    fmt = spec.get("format")
    if fmt is not None and not isinstance(fmt, dict):
        raise InvalidRequest(f"'{param}.format' must be an object.", param=f"{param}.format")
    if isinstance(fmt, dict) and fmt.get("type") not in (None, "text", "grammar"):
        raise InvalidRequest(
            f"'{param}.format.type' must be 'text' or 'grammar'.", param=f"{param}.format.type"
        )
    grammar = fmt if isinstance(fmt, dict) and fmt.get("type") == "grammar" else None
    return Tool(name, _description(spec, param), {}, namespace=namespace, kind="custom", grammar=grammar)


_SEARCH_PARAMETERS = {
    "type": "object",
    "properties": {"query": {"type": "string"}, "limit": {"type": "number"}},
    "required": ["query"],
}


def _tool_search(raw: dict[str, Any], param: str) -> Tool:
    """Responses' client-run tool search: the model may call it; the call is a `tool_search_call`
    item, and the client's `tool_search_output` brings the tools it found (offered from then on)."""
    params = raw.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise InvalidRequest(
            f"'{param}.parameters' must be a JSON schema object.", param=f"{param}.parameters"
        )
    description = (
        _description(raw, param) or "Search the tools that are not listed yet; found tools become available."
    )
    return Tool("tool_search", description, params or _SEARCH_PARAMETERS, kind="tool_search")


def _description(spec: dict[str, Any], param: str) -> str:
    value = spec.get("description")
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"'{param}.description' must be a string.", param=f"{param}.description")
    return value or ""


def _namespace(raw: dict[str, Any], param: str) -> list[Tool]:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"'{param}.name' is required.", param=f"{param}.name")
    members = raw.get("tools")
    if not isinstance(members, list):
        raise InvalidRequest(f"'{param}.tools' must be an array.", param=f"{param}.tools")
    out: list[Tool] = []
    for j, member in enumerate(members):
        where = f"{param}.tools[{j}]"
        if not isinstance(member, dict):
            raise InvalidRequest(f"'{where}' must be an object.", param=where)
        kind = member.get("type", "function")
        if kind == "function":
            out.append(_function(member, where, name))
        elif kind == "custom":
            out.append(_custom(member, where, name))
        else:
            raise InvalidRequest(
                f"'{where}.type' must be 'function' or 'custom' (got {kind!r}).", param=f"{where}.type"
            )
    return out


def offered_tools(tools: Sequence[Any] | None, ignored: list[str], where: str = "tools") -> list[Tool]:
    """The client-run tools of `tools` (found at `where`); server-run ones are appended to
    `ignored` under their dotted place (`tools.3.type=tool_search`), as unknown fields are named."""
    offered: list[Tool] = []
    dotted = where.replace("[", ".").replace("]", "")  # input[0].tools -> input.0.tools
    for i, raw in enumerate(tools or ()):
        param = f"{where}[{i}]"
        if not isinstance(raw, dict):
            raise InvalidRequest(f"'{param}' must be an object.", param=param)
        kind = raw.get("type")
        if kind == "function":
            offered.append(_function(raw, param))
        elif kind == "custom":
            offered.append(_custom(raw, param))
        elif kind == "namespace":
            offered += _namespace(raw, param)
        elif kind == "tool_search" and raw.get("execution") == "client":
            offered.append(_tool_search(raw, param))
        elif kind in SEARCH_TOOLS:
            pass  # honoured by the upstream's own search (`wants_web_search`)
        elif isinstance(kind, str) and kind:
            ignored.append(f"{dotted}.{i}.type={kind}")
        else:
            raise InvalidRequest(f"'{param}.type' is required.", param=f"{param}.type")
    return offered


def _choice(
    choice: Any, offered: list[Tool], ignored: list[str]
) -> tuple[ChoiceMode, str | None, list[Tool]]:
    if choice is None or choice in ("auto", "none", "required"):
        return choice or "auto", None, offered
    if isinstance(choice, dict) and choice.get("type") in ("function", "custom"):
        kind = choice["type"]
        inner = choice.get(kind)
        named: dict[str, Any] = inner if isinstance(inner, dict) else choice
        forced = named.get("name")
        if not isinstance(forced, str) or not forced:
            raise InvalidRequest("'tool_choice.name' is required.", param="tool_choice.name")
        namespace = named.get("namespace")
        if isinstance(namespace, str) and namespace:
            forced = f"{namespace}.{forced}"
        if not any(forced in (t.name, t.qualified) for t in offered):
            raise InvalidRequest(
                f"'tool_choice' names {forced!r}, which is not in 'tools'.", param="tool_choice"
            )
        return "forced", forced, offered
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = {t.get("name") for t in choice.get("tools") or () if isinstance(t, dict)}
        kept = [t for t in offered if t.name in allowed or t.qualified in allowed]
        return ("required" if choice.get("mode") == "required" else "auto"), None, kept
    if isinstance(choice, dict) and isinstance(choice.get("type"), str) and choice["type"]:
        # a server-run tool (web_search_preview, file_search, mcp, ...): nothing here to force
        ignored.append(f"tool_choice.type={choice['type']}")
        return "auto", None, offered
    raise _unsupported(
        "tool_choice",
        "use 'none', 'auto', 'required', {'type': 'function', 'name': ...}, {'type': 'custom', 'name': ...} "
        "or {'type': 'allowed_tools', ...}.",
    )


def openai_tool_spec(
    tools: list[Any] | None,
    choice: Any,
    parallel: bool | None,
    ignored: list[str] | None = None,
    more: Sequence[tuple[str, Sequence[Any]]] = (),
) -> ToolSpec | None:
    """OpenAI tools and every `tool_choice` form (none, auto, required, a named function or custom
    tool, allowed_tools) as a `ToolSpec`, or None when no tool is offered. `more`: further
    `(where, tools)` groups (Responses `additional_tools` input items). Server-run tools are
    dropped and named in `ignored`."""
    dropped = ignored if ignored is not None else []
    offered = offered_tools(tools, dropped)
    for where, group in more:
        offered += offered_tools(group, dropped, where)
    mode, forced, offered = _choice(choice, offered, dropped)
    if not offered:
        if mode in ("required", "forced"):
            raise InvalidRequest(
                "'tool_choice' requires a tool but no client tools were given.", param="tool_choice"
            )
        return None
    return ToolSpec(tuple(offered), ToolChoice(mode, forced), "call_", parallel is not False)
