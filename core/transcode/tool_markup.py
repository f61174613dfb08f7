"""Complete tool-call markup -> raw calls: the form the prompt asks for and the forms models drift into.

    <tool_calls><tool_call><tool_name>N</tool_name><parameters>{...}</parameters></tool_call></tool_calls>
    <tool_call>{"name": N, "arguments": {...}}</tool_call>                  (Hermes / Qwen habit)
    <function_call>{"name": N, "arguments": {...}}</function_call>
    <function_calls><invoke name="N"><parameter name="k">v</parameter></invoke></function_calls>
    ```json {"name": N, "arguments": {...}} ```  or  {"tool_calls": [...]}  inside a fence

A closing tag may also occur inside a JSON string argument (a tool that writes XML), so an
element is tried against each of its closing tags in turn and the first that parses wins.
Parsing only shapes the text into (name, arguments); whether a call is valid (a known tool,
an object of arguments that fits its schema) is the caller's `resolve` decision.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from core.transcode.tool_args import loads_lenient

T = TypeVar("T")

TAGS = ("tool_calls", "tool_call", "function_calls", "function_call", "invoke")
CONTAINERS = ("tool_calls", "function_calls")
OPEN_TAG = re.compile(r"<(tool_calls|tool_call|function_calls|function_call|invoke)(?=[\s>/])([^<>]*)>", re.I)
_ATTR = re.compile(r"""([A-Za-z_][\w-]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>/]+))""")
_NAME_CHILD = re.compile(r"<(tool_name|function_name|name)\s*>\s*(.*?)\s*</\1\s*>", re.I | re.S)
_ARGS_OPEN = re.compile(r"<(parameters|arguments|args|input)\b[^<>]*>", re.I)
_PARAM = re.compile(r"""<parameter\s+name\s*=\s*["']?([^"'>]+)["']?\s*>(.*?)</parameter\s*>""", re.I | re.S)
_ARG_KEYS = ("arguments", "parameters", "input", "args")


@dataclass(frozen=True, slots=True)
class RawCall:
    """A call as written: the name, and arguments as text or an already-parsed value."""

    name: str
    arguments: Any


Resolve = Callable[[RawCall], T | None]


def parse_element(text: str, pos: int, resolve: Resolve[T]) -> tuple[list[T], int] | None:
    """The complete element opening at `pos`, resolved: (calls, end index), or None (not yet, or never)."""
    match = OPEN_TAG.match(text, pos)
    if match is None:
        return None
    tag = match.group(1).lower()
    attrs = _attrs(match.group(2))
    if match.group(2).rstrip().endswith("/"):
        name = attrs.get("name", "")
        call = resolve(RawCall(name, {})) if name and tag in ("invoke", "function_call") else None
        return ([call], match.end()) if call is not None else None
    closer = re.compile(rf"</{tag}\s*>", re.I)
    for close in closer.finditer(text, match.end()):
        inner = text[match.end() : close.start()]
        calls = _container(inner, resolve) if tag in CONTAINERS else _one(_element(attrs, inner), resolve)
        if calls:
            return calls, close.end()
    return None


def _one(raw: RawCall | None, resolve: Resolve[T]) -> list[T] | None:
    if raw is None:
        return None
    call = resolve(raw)
    return None if call is None else [call]


def _attrs(text: str) -> dict[str, str]:
    return {
        m.group(1).lower(): next(g for g in m.groups()[1:] if g is not None) for m in _ATTR.finditer(text)
    }


def _container(inner: str, resolve: Resolve[T]) -> list[T] | None:
    body = inner.strip()
    if body[:1] in ("{", "["):
        return json_calls(body, resolve)
    calls: list[T] = []
    pos = 0
    while True:
        match = OPEN_TAG.search(inner, pos)
        if match is None:
            break
        found = parse_element(inner, match.start(), resolve)
        if found is None:
            return None
        calls += found[0]
        pos = found[1]
    return calls or None


def _element(attrs: dict[str, str], inner: str) -> RawCall | None:
    name = attrs.get("name", "").strip()
    body = inner.strip()
    if body[:1] == "{":
        try:
            value = loads_lenient(body)
        except ValueError:
            return None
        if not isinstance(value, dict):
            return None
        return RawCall(name, value) if name else _json_call(value)
    named = _NAME_CHILD.search(inner)
    if named:
        name = named.group(2).strip().strip("`\"'")
    if not name:
        return None
    opened = _ARGS_OPEN.search(inner)
    if opened:
        tag = opened.group(1).lower()
        closes = list(re.finditer(rf"</{tag}\s*>", inner[opened.end() :], re.I))
        end = opened.end() + closes[-1].start() if closes else len(inner)
        return RawCall(name, inner[opened.end() : end])
    params = _PARAM.findall(inner)
    if params:
        return RawCall(name, {key.strip(): _param_value(value) for key, value in params})
    leftover = _NAME_CHILD.sub("", inner).strip() if named else body
    return RawCall(name, {}) if not leftover else None


def _param_value(value: str) -> str:
    if value.startswith("\n"):
        value = value[1:]
    return value[:-1] if value.endswith("\n") else value


def _json_call(item: Any) -> RawCall | None:
    if not isinstance(item, dict):
        return None
    function = item.get("function")
    if isinstance(function, dict):
        item = function
    name = item.get("name", item.get("tool_name", item.get("tool")))
    if not isinstance(name, str) or not name:
        return None
    for key in _ARG_KEYS:
        if key in item:
            return RawCall(name, item[key])
    if set(item) <= {"name", "tool_name", "tool", "type", "id"}:
        return RawCall(name, {})
    return None


def json_calls(text: str, resolve: Resolve[T]) -> list[T] | None:
    """A JSON call, a list of them, or a `{"tool_calls": [...]}` envelope; None when it is not one."""
    try:
        value = loads_lenient(text)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("tool_calls"), list):
        value = value["tool_calls"]
    items = value if isinstance(value, list) else [value]
    calls: list[T] = []
    for item in items:
        raw = _json_call(item)
        call = resolve(raw) if raw is not None else None
        if call is None:
            return None
        calls.append(call)
    return calls or None


def fenced_calls(content: str, resolve: Resolve[T]) -> list[T] | None:
    """The inside of a code fence, when it is nothing but tool-call JSON or markup."""
    body = content.strip()
    if body.startswith("<"):
        found = parse_element(body, 0, resolve)
        return found[0] if found is not None and not body[found[1] :].strip() else None
    return json_calls(body, resolve) if body[:1] in ("{", "[") else None
