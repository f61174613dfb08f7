"""Structured output's checker and the reasoning-token sealer, pure."""

from __future__ import annotations

import pytest

from core.errors import InvalidRequest
from core.transcode.sealed import Sealer
from core.transcode.structured import OutputFormat, chat_output_format, responses_output_format

SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}},
    "required": ["n"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ('{"n": 1}', '{"n": 1}'),
        ('```json\n{"n": 2}\n```', '{"n": 2}'),
        ('Here it is: {"n": 3}. Enjoy!', '{"n": 3}'),
        ("{'n': 4,}", '{"n": 4}'),  # near-JSON repaired
        ('{"n": "5"}', '{"n": 5}'),  # a number written as a string
    ],
)
def test_schema_answers_that_pass(answer: str, value: str) -> None:
    assert OutputFormat("json_schema", SCHEMA).check(answer) == (value, "")


@pytest.mark.parametrize(
    ("answer", "problem"),
    [("", "empty"), ("no json here", "not valid JSON"), ('{"m": 1}', "schema"), ('{"n": 1.5}', "schema")],
)
def test_schema_answers_that_fail(answer: str, problem: str) -> None:
    value, why = OutputFormat("json_schema", SCHEMA).check(answer)
    assert value is None and problem in why


def test_json_object_wants_an_object() -> None:
    assert OutputFormat("json_object").check("[1, 2]") == (None, "the answer is JSON but not an object")
    assert OutputFormat("json_object").check('{"a": [1]}') == ('{"a": [1]}', "")


def test_formats_from_both_dialects() -> None:
    assert chat_output_format({"type": "text"}) is None and responses_output_format(None) is None
    chat = chat_output_format(
        {"type": "json_schema", "json_schema": {"name": "t", "schema": SCHEMA, "strict": True}}
    )
    flat = responses_output_format({"type": "json_schema", "name": "t", "schema": SCHEMA, "strict": True})
    assert chat == flat == OutputFormat("json_schema", SCHEMA, "t", True)
    for bad, param in [
        ({"a": 1}, "response_format.type"),
        ({"type": "json_schema", "json_schema": {"schema": []}}, "response_format.json_schema.schema"),
        (
            {"type": "json_schema", "json_schema": {"schema": {}, "strict": "yes"}},
            "response_format.json_schema.strict",
        ),
    ]:
        with pytest.raises(InvalidRequest) as info:
            chat_output_format(bad)
        assert info.value.param == param


def test_sealed_tokens_verify_and_forgeries_do_not() -> None:
    sealer = Sealer(b"k" * 32)
    token = sealer.seal("rs_1", "thinking", now=1000)
    assert sealer.open(token, "p") == {"id": "rs_1", "iat": 1000, "sha": sealer.open(token, "p")["sha"]}
    head, payload, mac = token.split(".")
    for bad in (
        Sealer(b"other-key").seal("rs_1", "thinking", now=1000),  # another gateway's
        f"{head}.{payload}x.{mac}",
        f"{head}.{payload}.{mac[::-1]}",
        "gAAAAABopaque-openai-blob",
        42,
    ):
        with pytest.raises(InvalidRequest) as info:
            sealer.open(bad, "input[1].encrypted_content")
        assert (
            info.value.param == "input[1].encrypted_content"
            and info.value.code == "invalid_encrypted_content"
        )
