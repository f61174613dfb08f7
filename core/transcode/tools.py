"""Emulated tool calling: tools rendered into the prompt, calls found in the streamed answer.

The upstream has no tools. `ToolSpec.prompt()` asks the model for one markup (docs/protocol.md#history's
`<tool_calls>` XML); `ToolDetector` (tool_detector.py) finds that markup, and the variants models drift into
(`tool_markup`), in the answer as it streams, even split across tokens. Text before a call is
released as it comes; only a tail that may still become markup (`<too`, a backtick) is held.
Markup that turns out not to be a call is released as text. Text after a call is dropped: the
model cannot know the result yet, so anything it writes there is speculation about it.

`tool_choice` required or forced: the detector holds the text until a call appears (then the
text before it is released); if the answer ends without one, `ToolFilter` ends it with
`Finish(RETRY)` and the service runs the turn once more with `ToolSpec.corrective()` appended. The same detector serves
chat completions, Responses and Messages; only the call-id prefix differs (`call_`, `toolu_`).
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from core.errors import InvalidRequest
from core.events import Event, Fault, Finish, TextDelta, ToolCall
from core.transcode.tool_args import check, parse_arguments
from core.transcode.tool_detector import ToolDetector
from core.transcode.tool_markup import RawCall

ChoiceMode = Literal["none", "auto", "required", "forced"]
_ALPHABET = string.ascii_letters + string.digits


def new_call_id(prefix: str = "call_") -> str:
    """`call_…` (OpenAI) or `toolu_01…` (Anthropic) with 24 random base62 characters."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(24))
    return prefix + ("01" + body[2:] if prefix == "toolu_" else body)


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the client offers: name, description and a JSON schema for its arguments.

    `namespace`: the Responses namespace tool that groups it (the prompt shows `namespace.name`).
    `kind`: `function`; `custom`, a free-form tool (Responses/chat `custom`) whose input is raw
    text, not JSON, with `grammar` the client's input format (`{"type": "grammar", "syntax",
    "definition"}`) if any; or `tool_search`, Responses' client-run tool search.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    strict: bool = False  # a schema violation makes the call invalid rather than reported
    namespace: str = ""
    kind: Literal["function", "custom", "tool_search"] = "function"
    grammar: dict[str, Any] | None = None

    @property
    def custom(self) -> bool:
        return self.kind == "custom"

    @property
    def qualified(self) -> str:
        """The name the model sees and writes."""
        return f"{self.namespace}.{self.name}" if self.namespace else self.name


# What a tool name may hold: the names go verbatim into the tool prompt's markup and come back in
# calls, so anything that could open or close a tag (`</tool_name><evil>`), quote or break a line
# is refused. Dots and colons stay legal: namespaced (`ns.fn`) and MCP-style names use them.
TOOL_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def check_tool_names(tools: Sequence[Tool]) -> None:
    """A 400 for a tool name the prompt markup cannot carry, or one offered twice (every dialect)."""
    seen: set[str] = set()
    for tool in tools:
        name = tool.qualified
        if not TOOL_NAME.fullmatch(name):
            raise InvalidRequest(
                f"Invalid tool name {name[:140]!r} in 'tools': use 1 to 128 letters, digits, '_', '-', '.' or ':'.",
                param="tools",
            )
        if name in seen:
            raise InvalidRequest(f"Tool name {name!r} is given twice in 'tools'.", param="tools")
        seen.add(name)


@dataclass(frozen=True, slots=True)
class ToolChoice:
    mode: ChoiceMode = "auto"
    name: str | None = None  # the forced tool


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """The tools of one request and how they may be called; builds the prompt and the detector."""

    tools: tuple[Tool, ...] = ()
    choice: ToolChoice = ToolChoice()
    id_prefix: str = "call_"
    parallel: bool = True
    new_id: Callable[[str], str] = new_call_id
    max_calls: int | None = None
    retry: bool = False  # this attempt may end in `Finish(RETRY)` when a required call is missing

    def __post_init__(self) -> None:
        check_tool_names(self.tools)

    @property
    def active(self) -> bool:
        """Whether calls are offered at all (tools present and choice not `none`)."""
        return bool(self.tools) and self.choice.mode != "none"

    @property
    def requires_call(self) -> bool:
        return self.active and self.choice.mode in ("required", "forced")

    def prompt(self) -> str:
        """The instructions that offer the tools, for the system part of the upstream message."""
        if not self.active:
            return ""
        lines = [
            "# Tools",
            "",
            "You can call the tools listed below. To call tools, write exactly this block:",
            "",
            "<tool_calls>",
            '<tool_call><tool_name>TOOL_NAME</tool_name><parameters>{"arg": "value"}</parameters></tool_call>',
            "</tool_calls>",
            "",
            "Rules:",
            "- <parameters> holds one JSON object whose keys follow the tool's parameters schema."
            + (
                " For a FREE-FORM tool, <parameters> holds the raw input text itself (no JSON, no quotes)."
                if any(t.custom for t in self.tools)
                else ""
            ),
            "- To call several tools at once, put one <tool_call> per call inside the one <tool_calls> block."
            if self.parallel
            else "- Call one tool at a time.",
            "- Write nothing after </tool_calls>: stop there. The results come back to you in the next turn "
            "as [tool result ...] blocks.",
            "- Do not wrap the block in a markdown code fence and do not describe a call instead of making it.",
            "- A short sentence before the block is fine. Earlier calls in this conversation are shown in "
            "the same form.",
            "",
            "Available tools:",
        ]
        for tool in self.tools:
            lines += ["", f"## {tool.qualified}"]
            if tool.description:
                lines.append(tool.description.strip())
            if tool.custom:
                lines.append(_free_form(tool.grammar))
                continue
            schema = tool.parameters or {"type": "object", "properties": {}}
            lines.append(
                "Parameters (JSON schema): " + json.dumps(schema, ensure_ascii=False, separators=(",", ":"))
            )
        lines += ["", "When to call: " + self._when()]
        return "\n".join(lines)

    def _when(self) -> str:
        mode = self.choice.mode
        if mode == "forced":
            return f"this reply MUST call the tool `{self.choice.name}`: write the <tool_calls> block now."
        if mode == "required":
            return "this reply MUST call at least one tool: pick the most suitable one and write the block."
        return "call a tool when it is needed to answer well; otherwise answer in plain text."

    def corrective(self) -> str:
        """Appended for the one retry when a required call was not made."""
        target = f"the tool `{self.choice.name}`" if self.choice.mode == "forced" else "one of the tools"
        return (
            f"[system]: Your reply must call {target}. Answer with only a <tool_calls> block in the form "
            "given above, with the arguments as a JSON object. No other text."
        )

    def detector(self) -> ToolDetector:
        limit = 1 if not self.parallel else self.max_calls
        return ToolDetector(self.resolve, hold_all=self.requires_call, limit=limit)

    def resolve(self, raw: RawCall) -> ToolCall | None:
        """A raw call as a `ToolCall` when it names an offered tool with object arguments that fit
        (a free-form tool takes its input text as written)."""
        tool = self._tool(raw.name)
        if tool is None:
            return None
        if tool.custom:
            text = _free_input(raw.arguments)
            return ToolCall(self.new_id(self.id_prefix), tool.name, text, tool.namespace, kind="custom")
        args = parse_arguments(raw.arguments)
        if args is None:
            return None
        if tool.parameters:
            fixed, problems = check(args, tool.parameters)
            if isinstance(fixed, dict):
                args = fixed
            if problems and tool.strict:
                return None
        text = json.dumps(args, ensure_ascii=False, separators=(",", ":"))
        return ToolCall(self.new_id(self.id_prefix), tool.name, text, tool.namespace, kind=tool.kind)

    def _tool(self, name: str) -> Tool | None:
        name = name.strip().strip("`\"'")
        found = _named(self.tools, name, lambda t: t.qualified)  # a namespace may be called `functions`
        if found is None and name.startswith("functions."):
            name = name[len("functions.") :]
            found = _named(self.tools, name, lambda t: t.qualified)
        found = found or _named(self.tools, name, lambda t: t.name)
        if found is None or (
            self.choice.mode == "forced" and self.choice.name not in (found.name, found.qualified)
        ):
            return None
        return found


def _named(tools: Sequence[Tool], name: str, key: Callable[[Tool], str]) -> Tool | None:
    """The tool called `name`: an exact match, else the only case-insensitive one."""
    exact = [t for t in tools if key(t) == name]
    if len(exact) == 1:
        return exact[0]
    folded = [t for t in tools if key(t).lower() == name.lower()]
    return folded[0] if len(folded) == 1 else None


def _free_form(grammar: dict[str, Any] | None) -> str:
    """How the prompt describes a free-form tool's input."""
    line = "FREE-FORM tool: <parameters> holds the raw input text, exactly as the tool reads it (not JSON)."
    if isinstance(grammar, dict) and grammar.get("type") == "grammar":
        syntax = grammar.get("syntax") or "lark"
        line += f"\nThe input must match this {syntax} grammar:\n{grammar.get('definition') or ''}"
    return line


def _free_input(raw: Any) -> str:
    """A free-form tool's input as the model wrote it: the text, unquoted if written as a JSON
    string, or the one string of a JSON object (`{"input": "..."}`) when the model wrapped it."""
    if isinstance(raw, dict):
        values = list(raw.values())
        if len(values) == 1 and isinstance(values[0], str):
            return values[0]
        return json.dumps(raw, ensure_ascii=False)
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
    if text.startswith("\n"):
        text = text[1:]
    if text.endswith("\n"):
        text = text[:-1]
    stripped = text.strip()
    if stripped.startswith('"') and stripped.endswith('"'):
        try:
            value = json.loads(stripped)
        except ValueError:
            return text
        if isinstance(value, str):
            return value
    return text


# --- history ------------------------------------------------------------------------------------


def render_calls(calls: Sequence[tuple[str, str]]) -> str:
    """Earlier calls `(name, arguments JSON)` in the markup the prompt asks for."""
    parts = []
    for name, arguments in calls:
        args = parse_arguments(arguments)
        text = json.dumps(args, ensure_ascii=False, separators=(",", ":")) if args is not None else arguments
        parts.append(f"<tool_call><tool_name>{name}</tool_name><parameters>{text}</parameters></tool_call>")
    return "<tool_calls>" + "".join(parts) + "</tool_calls>"


def result_role(call_id: str, name: str = "", *, is_error: bool = False) -> str:
    """The `[role]` of a tool result block: `tool result for call_1 (get_weather)`."""
    role = "tool error" if is_error else "tool result"
    if call_id:
        role += f" for {call_id}"
    if name:
        role += f" ({name})"
    return role


# --- the event filter ---------------------------------------------------------------------------


RETRY = "retry"  # the reason of the Finish that asks the caller for the corrective turn


class ToolFilter:
    """Core events through the detector: calls become `ToolCall`s, the finish becomes `tool_calls`.

    When a call was required, none came and the spec allows a `retry`, the held text is dropped
    and the finish becomes `Finish(RETRY)`: the caller runs the turn once more with
    `ToolSpec.corrective()` appended (see `core.services.tool_turns`).
    """

    __slots__ = ("detector", "spec")

    def __init__(self, spec: ToolSpec) -> None:
        self.spec = spec
        self.detector = spec.detector()

    def apply(self, events: list[Event]) -> list[Event]:
        out: list[Event] = []
        for event in events:
            out += self.handle(event)
        return out

    def handle(self, event: Event) -> list[Event]:
        if isinstance(event, TextDelta):
            return list(self.detector.feed(event.text))
        if isinstance(event, Finish):
            if self.spec.retry and self.spec.requires_call:
                flushed: list[Event] = list(self.detector.flush())
                if not self.detector.calls:
                    return [Finish(RETRY)]  # the held text was this attempt's answer: dropped with it
                return [*flushed, Finish("tool_calls")]
            out: list[Event] = list(self.detector.flush())
            return [*out, Finish("tool_calls")] if self.detector.calls else [*out, event]
        if isinstance(event, Fault):
            return [*self.detector.abort(), event]
        return [event]
