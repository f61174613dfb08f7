"""Anthropic `tools` and `tool_choice` -> a `ToolSpec`.

Three kinds of tool arrive:

- custom tools (`type` absent or `custom`): name, description, `input_schema`;
- Anthropic-defined client tools (`bash_*`, `text_editor_*`, `memory_*`): the client runs them, so
  they are offered like custom tools, with the input schema Anthropic publishes for them (the
  request carries only type and name);
- server tools (`web_search_*`, `web_fetch_*`, `code_execution_*`, and any other typed tool): they
  run on Anthropic's servers, which the upstream is not. Web search maps onto the upstream's own
  search; the others are dropped and named in `ignored` (`tools.2.type=web_fetch_20250910`): a 400
  would end a Claude Code session, and the model simply does not get them. `server_tool()` is the
  one place that decides.
"""

from __future__ import annotations

from typing import Any, Literal

from core.errors import InvalidRequest
from core.transcode.depth import check_depth
from core.transcode.tools import Tool, ToolChoice, ToolSpec

_VIEW_RANGE = {
    "type": "array",
    "items": {"type": "integer"},
    "description": "[start, end] lines to show (1-based, end -1 for the end of the file)",
}
_BASH = {
    "type": "object",
    "properties": {
        "command": {"type": "string", "description": "The bash command to run."},
        "restart": {
            "type": "boolean",
            "description": "Restart the shell session instead of running a command.",
        },
    },
}
_EDIT_FIELDS: dict[str, Any] = {
    "path": {"type": "string", "description": "Absolute path to the file or directory."},
    "file_text": {"type": "string", "description": "The whole content of the file (`create`)."},
    "old_str": {"type": "string", "description": "The exact text to replace (`str_replace`)."},
    "new_str": {
        "type": "string",
        "description": "The replacement (`str_replace`) or the text to insert (`insert`).",
    },
    "insert_line": {
        "type": "integer",
        "description": "The line after which to insert (`insert`; 0 for the top).",
    },
    "view_range": _VIEW_RANGE,
}


def _editor(commands: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"command": {"type": "string", "enum": commands}, **_EDIT_FIELDS},
        "required": ["command", "path"],
    }


_MEMORY = {
    "type": "object",
    "properties": {
        "command": {
            "type": "string",
            "enum": ["view", "create", "str_replace", "insert", "delete", "rename"],
        },
        "path": {"type": "string", "description": "A path under /memories."},
        "file_text": _EDIT_FIELDS["file_text"],
        "old_str": _EDIT_FIELDS["old_str"],
        "new_str": {"type": "string", "description": "The replacement (`str_replace`)."},
        "insert_line": _EDIT_FIELDS["insert_line"],
        "insert_text": {"type": "string", "description": "The text to insert (`insert`)."},
        "view_range": _VIEW_RANGE,
        "old_path": {"type": "string", "description": "The path to rename (`rename`)."},
        "new_path": {"type": "string", "description": "The new path (`rename`)."},
    },
    "required": ["command"],
}
_EDITOR_DESCRIPTION = (
    "View, create and edit files: `view` a file or directory, `create` a file, `str_replace` one exact "
    "occurrence, `insert` after a line."
)
# Type prefix -> (input schema, description). The 2025-04-29 and later editors dropped `undo_edit`.
TYPED_TOOLS: dict[str, tuple[dict[str, Any], str]] = {
    "bash_": (_BASH, "Run a command in a persistent bash shell; `restart` starts a fresh one."),
    "text_editor_20241022": (
        _editor(["view", "create", "str_replace", "insert", "undo_edit"]),
        _EDITOR_DESCRIPTION,
    ),
    "text_editor_20250124": (
        _editor(["view", "create", "str_replace", "insert", "undo_edit"]),
        _EDITOR_DESCRIPTION,
    ),
    "text_editor_": (_editor(["view", "create", "str_replace", "insert"]), _EDITOR_DESCRIPTION),
    "memory_": (
        _MEMORY,
        "Read and write files in the /memories directory that persists across conversations.",
    ),
}


def typed_tool(kind: str) -> tuple[dict[str, Any], str] | None:
    """The published input schema and a description of an Anthropic-defined client tool, or None."""
    for prefix in sorted(TYPED_TOOLS, key=len, reverse=True):  # a dated entry before its family
        if kind.startswith(prefix):
            return TYPED_TOOLS[prefix]
    return None


def is_web_search(tool: Any) -> bool:
    """Anthropic's web search server tool (`web_search_20250305` and its later versions)."""
    return isinstance(tool, dict) and str(tool.get("type") or "").startswith("web_search_")


def server_tool(raw: dict[str, Any], param: str, ignored: list[str]) -> Tool | None:
    """A tool that runs on Anthropic's servers. Web search is the upstream's own search
    (`ChatRequest.web_search`), so it is not offered as a tool; any other is dropped and reported."""
    if not is_web_search(raw):
        ignored.append(f"{param}.type={raw.get('type')}")
    return None


def _bad(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param)


def _offered(tools: list[Any] | None, ignored: list[str]) -> list[Tool]:
    offered: list[Tool] = []
    for i, raw in enumerate(tools or ()):
        param = f"tools.{i}"
        if not isinstance(raw, dict):
            raise _bad(param, "must be an object")
        kind = raw.get("type")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise _bad(f"{param}.name", "Field required")
        if kind is None or kind == "custom":
            schema = raw.get("input_schema")
            if not isinstance(schema, dict):
                raise _bad(f"{param}.input_schema", "Field required (a JSON schema object)")
            check_depth(schema, f"{param}.input_schema")
            description = raw.get("description")
            if description is not None and not isinstance(description, str):
                raise _bad(f"{param}.description", "must be a string")
            offered.append(Tool(name, description or "", schema, raw.get("strict") is True))
        elif not isinstance(kind, str):
            raise _bad(f"{param}.type", "must be a string")
        elif (known := typed_tool(kind)) is not None:
            offered.append(Tool(name, known[1], known[0]))
        else:
            tool = server_tool(raw, param, ignored)
            if tool is not None:
                offered.append(tool)
    return offered


def anthropic_tool_spec(
    tools: list[Any] | None, choice: dict[str, Any] | None, ignored: list[str] | None = None
) -> ToolSpec | None:
    """The client-run tools and `tool_choice` (auto, any, tool, none; `disable_parallel_tool_use`)
    as a `ToolSpec`, or None when no tool is offered."""
    offered = _offered(tools, ignored if ignored is not None else [])
    choice = {"type": "auto"} if choice is None else choice
    kind = choice.get("type")
    parallel = choice.get("disable_parallel_tool_use", False)
    if not isinstance(parallel, bool):
        raise _bad("tool_choice.disable_parallel_tool_use", "must be a boolean")
    names = {t.name for t in offered}
    name = choice.get("name")
    if kind == "tool":
        if not isinstance(name, str) or name not in names:
            raise _bad("tool_choice.name", f"{name!r} is not one of the tools given")
        mode: Literal["none", "auto", "required", "forced"] = "forced"
    elif kind in ("auto", "any", "none"):
        mode = {"auto": "auto", "any": "required", "none": "none"}[kind]  # type: ignore[assignment]
        name = None
    else:
        raise _bad("tool_choice.type", "must be one of auto, any, tool, none")
    if not offered:
        if mode in ("required", "forced"):
            raise _bad("tool_choice", f"{kind!r} needs tools")
        return None
    return ToolSpec(tuple(offered), ToolChoice(mode, name), "toolu_", not parallel)
