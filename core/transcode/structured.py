"""Structured output: `response_format` (chat) and `text.format` (Responses) as prompt + check.

The upstream has no JSON mode, so the gateway asks for JSON in the prompt (`OutputFormat.prompt`),
takes the answer apart (`OutputFormat.check`: a code fence or a sentence around the JSON is cut
away, near-JSON repaired), and validates it against the schema when one is given (the subset of
JSON Schema `tool_args.check` knows, with its safe coercions). The answer the client gets is the
JSON alone. The turn that does this, with its one corrective retry, is
`core.services.tool_turns.StructuredTurn`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from core.errors import InvalidRequest, UpstreamError
from core.transcode.depth import check_depth
from core.transcode.tool_args import check, loads_lenient

Kind = Literal["json_object", "json_schema"]


class StructuredOutputFailed(UpstreamError):
    """The model's answer was not the JSON asked for, twice."""

    default_code = "invalid_structured_output"


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """What the answer must be: any JSON object, or JSON valid against `schema`."""

    kind: Kind
    schema: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    strict: bool = False

    def prompt(self) -> str:
        """The instruction for the system part of the upstream message."""
        lines = [
            "# Output format",
            "",
            "Reply with one JSON value and nothing else: no prose, no markdown code fence, nothing before or "
            "after it.",
        ]
        if self.kind == "json_object":
            lines.append("The value must be a JSON object.")
        else:
            schema = json.dumps(self.schema, ensure_ascii=False, separators=(",", ":"))
            lines.append(
                f"The value must be valid against this JSON schema{f' ({self.name})' if self.name else ''}, "
                f"with every required property present: {schema}"
            )
        return "\n".join(lines)

    def check(self, text: str) -> tuple[str | None, str]:
        """(the JSON alone, "") when `text` holds a conforming answer, else (None, what is wrong)."""
        value, problem = _extract(text)
        if problem:
            return None, problem
        if self.kind == "json_object" or not self.schema:
            if self.kind == "json_object" and not isinstance(value, dict):
                return None, "the answer is JSON but not an object"
            return json.dumps(value, ensure_ascii=False), ""
        fixed, problems = check(value, self.schema)
        if problems:
            return None, "the JSON does not match the schema: " + "; ".join(problems[:5])
        return json.dumps(fixed, ensure_ascii=False), ""

    def corrective(self, answer: str, problem: str) -> str:
        """Appended for the one retry: the previous answer, what was wrong, and the rule again."""
        shown = answer if len(answer) <= 4000 else answer[:4000] + " ..."
        return (
            f"[assistant]: {shown}\n\n"
            f"[system]: That reply cannot be used: {problem}. Reply again with only the JSON value, "
            "following the output format given above."
        )


def _extract(text: str) -> tuple[Any, str]:
    body = text.strip()
    if not body:
        return None, "the answer is empty"
    try:
        return loads_lenient(body), ""
    except ValueError:
        pass
    starts = [i for i in (body.find("{"), body.find("[")) if i >= 0]
    if starts:
        start = min(starts)
        end = body.rfind("}" if body[start] == "{" else "]")
        if end > start:
            try:
                return loads_lenient(body[start : end + 1]), ""
            except ValueError:
                pass
    return None, "the answer is not valid JSON"


def _format(spec: Any, param: str, schema_of: Any) -> OutputFormat | None:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise InvalidRequest(f"'{param}' must be an object.", param=param)
    kind = spec.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return OutputFormat("json_object")
    if kind != "json_schema":
        raise InvalidRequest(
            f"'{param}.type' must be 'text', 'json_object' or 'json_schema' (got {kind!r}).",
            param=f"{param}.type",
        )
    holder, where = schema_of(spec)
    if not isinstance(holder, dict):
        raise InvalidRequest(f"'{where}' must be an object.", param=where)
    schema = holder.get("schema")
    if not isinstance(schema, dict):
        raise InvalidRequest(f"'{where}.schema' must be a JSON schema object.", param=f"{where}.schema")
    check_depth(schema, f"{where}.schema")
    name = holder.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidRequest(f"'{where}.name' must be a string.", param=f"{where}.name")
    strict = holder.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise InvalidRequest(f"'{where}.strict' must be a boolean.", param=f"{where}.strict")
    return OutputFormat("json_schema", schema, name or "", bool(strict))


def chat_output_format(response_format: Any) -> OutputFormat | None:
    """Chat completions' `response_format`: {type: text | json_object | json_schema, json_schema: {...}}."""
    return _format(
        response_format, "response_format", lambda s: (s.get("json_schema"), "response_format.json_schema")
    )


def responses_output_format(fmt: Any) -> OutputFormat | None:
    """Responses' `text.format`: the json_schema fields sit on the format itself."""
    return _format(fmt, "text.format", lambda s: (s, "text.format"))
