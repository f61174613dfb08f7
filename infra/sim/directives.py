"""The `#sim` directive: per-request behaviour written into the prompt text.

The gateway flattens the conversation (role prefixes, system and tool instructions) before it reaches
the simulator, so the LAST `#sim` occurrence anywhere in the message wins and runs to the end of its
line. Grammar: `#sim` followed by space-separated `key=value` pairs and bare flags; a value that starts
with `{`, `[` or `"` is read as one JSON value (so `args={"city": "Paris"}` may contain spaces).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

_INT_KEYS = ("tokens", "think", "delay_ms", "ttfb_ms", "midstream_drop", "image", "status", "agents", "cite")
_FLAGS = ("per_frame", "inband_error", "usage_limit", "stream_error", "empty", "card", "search", "moderated")
TOOL_FORMATS = ("xml", "invoke", "function_call", "json_fence")


@dataclass(frozen=True, slots=True)
class Directive:
    line: str = ""  # the directive text itself; it seeds the answer when present
    tokens: int | None = None
    think: int | None = None
    delay_ms: int = 0
    ttfb_ms: int = 0
    midstream_drop: int | None = None
    image: int | None = None
    status: int | None = None
    agents: int | None = None
    per_frame: bool = False  # one write per frame, no pause (as delay_ms, without the sleep)
    inband_error: bool = False
    usage_limit: bool = False
    stream_error: bool = False
    empty: bool = False
    card: bool = False
    search: bool = False
    cite: int = 0  # citations of the search results (`search` implied), one sentence each
    moderated: bool = False
    tool: str | None = None
    args: Any = field(default_factory=dict)
    tool_format: str = "xml"
    say: str | None = None  # the answer, verbatim
    unknown: tuple[str, ...] = ()

    @property
    def streams_per_token(self) -> bool:
        return self.delay_ms > 0 or self.per_frame or self.midstream_drop is not None


NONE = Directive()
_decoder = json.JSONDecoder()


def _find(message: str) -> int:
    """Index just after the last `#sim` that stands as a word, or -1."""
    start = len(message)
    while True:
        at = message.rfind("#sim", 0, start)
        if at < 0:
            return -1
        end = at + 4
        if end == len(message) or message[end] in " \t\r\n":
            return end
        start = at


def parse(message: str) -> Directive:
    at = _find(message)
    if at < 0:
        return NONE
    newline = message.find("\n", at)
    line = message[at : newline if newline >= 0 else len(message)]
    values: dict[str, Any] = {}
    unknown: list[str] = []
    i = 0
    while i < len(line):
        if line[i].isspace():
            i += 1
            continue
        j = i
        while j < len(line) and not line[j].isspace() and line[j] != "=":
            j += 1
        key = line[i:j]
        if j < len(line) and line[j] == "=":
            value, i = _value(line, j + 1)
            _assign(values, unknown, key, value)
        else:
            i = j
            if key in _FLAGS:
                values[key] = True
            else:
                unknown.append(key)
    return replace(NONE, line=("#sim" + line).strip(), unknown=tuple(unknown), **values)


def _value(line: str, i: int) -> tuple[Any, int]:
    if i < len(line) and line[i] in '{["':
        try:
            value, end = _decoder.raw_decode(line, i)
            return value, end
        except ValueError:
            pass
    j = i
    while j < len(line) and not line[j].isspace():
        j += 1
    return line[i:j], j


def _assign(values: dict[str, Any], unknown: list[str], key: str, value: Any) -> None:
    if key in _INT_KEYS:
        try:
            values[key] = max(0, int(value))
        except (TypeError, ValueError):
            unknown.append(key)
    elif key == "tool":
        values["tool"] = str(value)
    elif key == "args":
        values["args"] = value
    elif key == "say":
        values["say"] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    elif key == "tool_format" and value in TOOL_FORMATS:
        values["tool_format"] = value
    elif key in _FLAGS:
        values[key] = str(value).lower() not in ("0", "false", "no")
    else:
        unknown.append(key)
