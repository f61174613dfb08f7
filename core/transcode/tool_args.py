"""Tool-call arguments as models write them: repaired into JSON, then checked against the schema.

Models prompted to write JSON slip in predictable ways: code fences around it, trailing commas,
single quotes, unquoted keys, Python literals, raw newlines inside strings, or the whole object
given again as a JSON string. `parse_arguments` undoes those. `check` validates the common
subset of JSON Schema that tool definitions use (type, required, properties,
additionalProperties, enum, const, items, anyOf/oneOf) and coerces the safe slips: a number or
boolean written as a string, an object or array written as a JSON string. No dependency: a full
validator (jsonschema) would be a cold-start cost on every deployable for this subset.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.S)
_BARE = {"True": "true", "False": "false", "None": "null", "true": "true", "false": "false", "null": "null"}


def repair_json(text: str) -> str:
    """Rewrite near-JSON into JSON; a scanner, so string contents are never touched by the fixes."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            i = _string(text, i, out)
        elif c in "}]":
            while out and out[-1].isspace():
                out.pop()
            if out and out[-1] == ",":
                out.pop()
            out.append(c)
            i += 1
        elif c.isalpha() or c == "_" or c == "$":
            j = i
            while j < n and (text[j].isalnum() or text[j] in "_-$"):
                j += 1
            word = text[i:j]
            k = j
            while k < n and text[k] in " \t":
                k += 1
            if k < n and text[k] == ":":
                out.append(json.dumps(word))
            else:
                out.append(_BARE.get(word, word))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _string(text: str, i: int, out: list[str]) -> int:
    quote = text[i]
    i += 1
    buf: list[str] = []
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "'" and quote == "'":
                buf.append("'")
            else:
                buf.append(c + nxt)
            i += 2
            continue
        if c == quote:
            i += 1
            break
        if c == '"':
            buf.append('\\"')
        elif c == "\n":
            buf.append("\\n")
        elif c == "\r":
            buf.append("\\r")
        elif c == "\t":
            buf.append("\\t")
        else:
            buf.append(c)
        i += 1
    out.append('"' + "".join(buf) + '"')
    return i


def loads_lenient(text: str) -> Any:
    """JSON, or near-JSON repaired; raises ValueError when neither parses."""
    text = text.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    return json.loads(repair_json(text))


def parse_arguments(raw: Any) -> dict[str, Any] | None:
    """Arguments (text or an already-parsed value) -> a JSON object, or None if there is none."""
    value = raw
    for _ in range(2):  # an object given as a JSON string, once
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                value = loads_lenient(value)
            except ValueError:
                return None
    if value is None:
        return {}
    return value if isinstance(value, dict) else None


# --- the schema subset --------------------------------------------------------------------------

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def _is(value: Any, kind: str) -> bool:
    if kind in ("number", "integer") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    types = _TYPES.get(kind)
    return True if types is None else isinstance(value, types)


def _coerce(value: Any, kind: str) -> Any:
    """The value converted to `kind` when it was plainly written as a string; else unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if kind == "integer" and re.fullmatch(r"-?\d+", text):
        return int(text)
    if kind == "number" and re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", text):
        number = float(text)
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    if kind == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if kind == "null" and text.lower() in ("null", "none"):
        return None
    if kind in ("object", "array") and text[:1] in "{[":
        try:
            parsed = loads_lenient(text)
        except ValueError:
            return value
        return parsed if _is(parsed, kind) else value
    return value


def check(value: Any, schema: Any, path: str = "$") -> tuple[Any, list[str]]:
    """(the value with safe coercions applied, the problems found); no problems means valid."""
    if not isinstance(schema, dict) or not schema:
        return value, []
    problems: list[str] = []
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            for option in options:
                fixed, issues = check(value, option, path)
                if not issues:
                    value = fixed
                    break
            else:
                problems.append(f"{path}: matches none of the {key} options")
                return value, problems
    kinds = schema.get("type")
    if isinstance(kinds, str):
        kinds = [kinds]
    if isinstance(kinds, list) and kinds:
        if schema.get("nullable") is True:
            kinds = [*kinds, "null"]
        if not any(_is(value, k) for k in kinds):
            for kind in kinds:
                fixed = _coerce(value, kind)
                if _is(fixed, kind):
                    value = fixed
                    break
            else:
                problems.append(f"{path}: expected {' or '.join(kinds)}, got {_name(value)}")
                return value, problems
    if "enum" in schema and isinstance(schema["enum"], list) and value not in schema["enum"]:
        problems.append(f"{path}: must be one of {json.dumps(schema['enum'])}")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path}: must be {json.dumps(schema['const'])}")
    if isinstance(value, dict):
        value = dict(value)
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        required = schema.get("required")
        for key in required if isinstance(required, list) else ():
            if key not in value:
                problems.append(f"{path}: missing required property {key!r}")
        extra = schema.get("additionalProperties", True)
        for key in list(value):
            if key in props:
                value[key], issues = check(value[key], props[key], f"{path}.{key}")
                problems += issues
            elif extra is False:
                problems.append(f"{path}: unexpected property {key!r}")
            elif isinstance(extra, dict):
                value[key], issues = check(value[key], extra, f"{path}.{key}")
                problems += issues
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        items = []
        for index, item in enumerate(value):
            fixed, issues = check(item, schema["items"], f"{path}[{index}]")
            items.append(fixed)
            problems += issues
        value = items
    return value, problems


def _name(value: Any) -> str:
    for kind in ("boolean", "integer", "number", "string", "object", "array", "null"):
        if _is(value, kind):
            return kind
    return type(value).__name__
