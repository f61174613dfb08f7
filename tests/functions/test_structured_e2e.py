"""Structured output through the official `openai` SDK: `response_format` on chat completions,
`text.format` on Responses, streamed and not; the corrective retry and its failure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from core.catalog import Tier
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, sim_gateway

MODEL = "grok-4.20-0309-non-reasoning"
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
    "additionalProperties": False,
}
CHAT_SCHEMA = {"type": "json_schema", "json_schema": {"name": "trip", "schema": SCHEMA, "strict": True}}
TEXT_SCHEMA = {"format": {"type": "json_schema", "name": "trip", "schema": SCHEMA, "strict": True}}


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimServer, Gateway]]:
    with sim_gateway(tmp_path_factory.mktemp("structured"), [("sim-super-unlimited-s1", Tier.SUPER)]) as pair:
        yield pair


@pytest.fixture(scope="module")
def sim(both: tuple[SimServer, Gateway]) -> SimServer:
    return both[0]


@pytest.fixture(scope="module")
def gw(both: tuple[SimServer, Gateway]) -> Gateway:
    return both[1]


@pytest.fixture(scope="module")
def oai(gw: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="test", max_retries=0, timeout=30) as sdk:
        yield sdk


def ask(prompt: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": prompt}]


def prompts(sim: SimServer, since: int) -> list[str]:
    return [turn.message for turn in sim.log.chat_turns()[since:]]


def test_json_object_answer_is_the_json_alone(oai: openai.OpenAI, sim: SimServer) -> None:
    since = len(sim.log.chat_turns())
    # the model wraps its JSON in prose and a fence: the client gets the JSON alone
    prompt = 'Trip? #sim say="Sure:\\n```json\\n{\\"city\\": \\"Oslo\\", \\"days\\": 2}\\n```"'
    done = oai.chat.completions.create(
        model=MODEL, messages=ask(prompt), response_format={"type": "json_object"}
    )
    assert json.loads(done.choices[0].message.content or "") == {"city": "Oslo", "days": 2}
    sent = prompts(sim, since)
    assert len(sent) == 1 and "Reply with one JSON value and nothing else" in sent[0]


def test_json_schema_parses_with_the_sdk_helper(oai: openai.OpenAI) -> None:
    prompt = 'Trip? #sim say={"city": "Oslo", "days": "3"}'  # a number written as a string is coerced
    done = oai.chat.completions.create(model=MODEL, messages=ask(prompt), response_format=CHAT_SCHEMA)  # type: ignore[arg-type]
    assert done.choices[0].message.content == '{"city": "Oslo", "days": 3}'


def test_streamed_chat_json_comes_once_validated(oai: openai.OpenAI) -> None:
    prompt = 'Trip? #sim say={"city": "Rome", "days": 4} delay_ms=1'
    stream = oai.chat.completions.create(
        model=MODEL,
        messages=ask(prompt),
        response_format=CHAT_SCHEMA,
        stream=True,  # type: ignore[arg-type]
    )
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert pieces == ['{"city": "Rome", "days": 4}']


def test_one_corrective_retry_with_the_previous_answer(oai: openai.OpenAI, sim: SimServer) -> None:
    since = len(sim.log.chat_turns())
    # the first answer is not JSON; it carries the directive the retry (which quotes it) runs on
    inner = "#sim say=" + json.dumps('{"city": "Oslo", "days": 2}').replace("{", "\\u007b")
    prompt = "Trip? #sim say=" + json.dumps("Oslo for two days " + inner).replace("#sim", "\\u0023sim")
    done = oai.chat.completions.create(model=MODEL, messages=ask(prompt), response_format=CHAT_SCHEMA)  # type: ignore[arg-type]
    assert json.loads(done.choices[0].message.content or "") == {"city": "Oslo", "days": 2}
    sent = prompts(sim, since)
    assert len(sent) == 2 and "[assistant]: Oslo for two days" in sent[1] and "cannot be used" in sent[1]


def test_schema_violation_twice_is_a_clear_error(oai: openai.OpenAI, sim: SimServer) -> None:
    since = len(sim.log.chat_turns())
    with pytest.raises(openai.APIStatusError) as info:
        oai.chat.completions.create(
            model=MODEL, messages=ask('Trip? #sim say={"city": "Oslo"}'), response_format=CHAT_SCHEMA
        )  # type: ignore[arg-type]
    assert info.value.status_code == 502
    assert "not the JSON asked for" in str(info.value) and "days" in str(info.value)
    assert len(prompts(sim, since)) == 2


def test_streamed_failure_ends_with_an_error(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.APIError, match="not the JSON asked for"):
        for _ in oai.chat.completions.create(
            model=MODEL,
            messages=ask("Trip? #sim say=nope"),
            response_format={"type": "json_object"},
            stream=True,
        ):
            pass


def test_responses_text_format(oai: openai.OpenAI) -> None:
    prompt = 'Trip? #sim say="{\\"city\\": \\"Lima\\", \\"days\\": 5}"'
    done = oai.responses.create(model=MODEL, input=prompt, text=TEXT_SCHEMA)  # type: ignore[arg-type]
    assert json.loads(done.output_text) == {"city": "Lima", "days": 5}
    assert done.text is not None and done.text.format is not None and done.text.format.type == "json_schema"
    with oai.responses.stream(model=MODEL, input=prompt, text={"format": {"type": "json_object"}}) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ['{"city": "Lima", "days": 5}'] and final.output_text == deltas[0]


@pytest.mark.parametrize(
    ("text", "param"),
    [
        ({"format": {"type": "xml"}}, "text.format.type"),
        ({"format": {"type": "json_schema"}}, "text.format.schema"),
    ],
)
def test_bad_text_format_is_a_400(oai: openai.OpenAI, text: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai.responses.create(model=MODEL, input="hi", text=text)  # type: ignore[arg-type]
    assert isinstance(info.value.body, dict) and info.value.body["param"] == param
