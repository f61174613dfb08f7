"""The field policy over HTTP, on all three dialects: unknown fields accepted, ignored and named in
`x-grokgate-ignored-params`; `GROKGATE_STRICT_PARAMS=true` refuses them; a known field of the
wrong type is a 400 naming it either way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.catalog import Tier
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, start_gateway

MODEL = "grok-4.20-0309-non-reasoning"
KEY = "sk-test-key"
HEADER = "x-grokgate-ignored-params"

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi #sim tokens=3"}]}
RESPONSES = {"model": MODEL, "input": "hi #sim tokens=3"}
MESSAGES = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi #sim tokens=3"}]}
ROUTES = {
    "chat": ("/v1/chat/completions", CHAT, "error"),
    "responses": ("/v1/responses", RESPONSES, "error"),
    "messages": ("/v1/messages", MESSAGES, "error"),
    "count_tokens": (
        "/v1/messages/count_tokens",
        {k: v for k, v in MESSAGES.items() if k != "max_tokens"},
        "error",
    ),
}
# Unknown to each dialect, top level and inside a known object.
UNKNOWN = {
    "chat": (
        {"x_future": 1, "stream_options": {"include_usage": True, "x_later": True}, "stream": True},
        "x_future, stream_options.x_later",
    ),
    "responses": (
        {"x_future": [1], "reasoning": {"effort": "low", "x_later": "a"}},
        "x_future, reasoning.x_later",
    ),
    "messages": (
        {"x_future": {"a": 1}, "thinking": {"type": "disabled", "x_later": 2}},
        "x_future, thinking.x_later",
    ),
    "count_tokens": ({"x_future": "z"}, "x_future"),
}


def _start(tmp: Path, sim: SimServer, **extra: str) -> Gateway:
    env = {
        "GROKGATE_UPSTREAM_URL": sim.url,
        "GROKGATE_ASSETS_URL": sim.url,
        "GROKGATE_API_KEYS": KEY,
        **extra,
    }
    return start_gateway(env, tmp, [("sim-super-unlimited-fp1", Tier.SUPER)])


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    server = SimServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tolerant(tmp_path_factory: pytest.TempPathFactory, sim: SimServer) -> Iterator[httpx.Client]:
    gateway = _start(tmp_path_factory.mktemp("tolerant"), sim)
    with httpx.Client(base_url=gateway.url, headers={"x-api-key": KEY}, timeout=30) as http:
        yield http
    gateway.stop()


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory, sim: SimServer) -> Iterator[httpx.Client]:
    gateway = _start(tmp_path_factory.mktemp("strict"), sim, GROKGATE_STRICT_PARAMS="true")
    with httpx.Client(base_url=gateway.url, headers={"x-api-key": KEY}, timeout=30) as http:
        yield http
    gateway.stop()


@pytest.mark.parametrize("dialect", list(ROUTES))
def test_unknown_fields_are_accepted_and_named(tolerant: httpx.Client, dialect: str) -> None:
    path, body, _ = ROUTES[dialect]
    fields, named = UNKNOWN[dialect]
    response = tolerant.post(path, json={**body, **fields})
    assert response.status_code == 200, response.text
    assert response.headers[HEADER] == named
    assert response.text  # a real answer (streamed or not), not an empty 200


@pytest.mark.parametrize("dialect", list(ROUTES))
def test_a_body_of_known_fields_has_no_header(tolerant: httpx.Client, dialect: str) -> None:
    path, body, _ = ROUTES[dialect]
    response = tolerant.post(path, json=body)
    assert response.status_code == 200, response.text
    assert HEADER not in response.headers


@pytest.mark.parametrize("dialect", list(ROUTES))
def test_strict_mode_refuses_the_first_unknown_field(strict: httpx.Client, dialect: str) -> None:
    path, body, _ = ROUTES[dialect]
    fields, named = UNKNOWN[dialect]
    response = strict.post(path, json={**body, **fields})
    assert response.status_code == 400
    first = named.split(", ")[0]
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and f"'{first}'" in error["message"]
    if dialect in ("messages", "count_tokens"):
        assert response.json()["type"] == "error"
    else:
        assert error["param"] == first and error["code"] == "unknown_parameter"
    assert strict.post(path, json=body).status_code == 200  # known fields only: served


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"max_tokens": True}, "max_tokens"),
        ({"stream": 1}, "stream"),
        ({"temperature": True}, "temperature"),
        ({"top_k": 1.5}, "top_k"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"tool_choice": {}}, "tool_choice.type"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        ({"thinking": {"type": "maybe"}}, "thinking.type"),
    ],
)
def test_messages_known_fields_keep_their_types(
    tolerant: httpx.Client, fields: dict[str, Any], param: str
) -> None:
    response = tolerant.post("/v1/messages", json={**MESSAGES, **fields})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert param in body["error"]["message"]
