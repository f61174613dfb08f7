"""Hostile request bodies on the three chat dialects, end to end (issue 18, rows 2, 3, 4, 6).

Each fault is a 400 or 413 in the route's own envelope, answered before any account is leased:
IPv6 forms of private addresses and malformed URLs in image parts, tool schemas nested past the
depth limit, a prompt larger than the upstream can echo back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from core.catalog import Tier
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, start_gateway

MODEL = "grok-4.20-0309-non-reasoning"
BOUND = 60.0


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, SimServer]]:
    sim = SimServer().start()
    gateway = start_gateway(
        {
            "GROKGATE_UPSTREAM_URL": sim.url,
            "GROKGATE_ASSETS_URL": sim.url,
            "GROKGATE_MEDIA": str(tmp_path_factory.mktemp("media")),
        },
        tmp_path_factory.mktemp("gw"),
        [("sim-super-unlimited-h1", Tier.SUPER), ("sim-super-unlimited-h2", Tier.SUPER)],
    )
    try:
        yield gateway, sim
    finally:
        gateway.stop()
        sim.stop()


def chat_body(image_url: str | None = None, text: str = "hi", tools: Any = None) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if image_url is not None:
        content.append({"type": "image_url", "image_url": {"url": image_url}})
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": content}]}
    if tools is not None:
        body["tools"] = [{"type": "function", "function": {"name": "f", "parameters": tools}}]
    return body


def responses_body(image_url: str | None = None, text: str = "hi", tools: Any = None) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "input_text", "text": text}]
    if image_url is not None:
        content.append({"type": "input_image", "image_url": image_url})
    body: dict[str, Any] = {"model": MODEL, "input": [{"role": "user", "content": content}]}
    if tools is not None:
        body["tools"] = [{"type": "function", "name": "f", "parameters": tools}]
    return body


def messages_body(image_url: str | None = None, text: str = "hi", tools: Any = None) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if image_url is not None:
        content.append({"type": "image", "source": {"type": "url", "url": image_url}})
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": content}],
    }
    if tools is not None:
        body["tools"] = [{"name": "f", "input_schema": tools}]
    return body


DIALECTS = [
    ("/v1/chat/completions", chat_body),
    ("/v1/responses", responses_body),
    ("/v1/messages", messages_body),
]


class Nested:
    """A schema nested `depth` levels, written out as JSON text (too deep for any JSON encoder)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def text(self) -> str:
        opened = '{"type":"object","properties":{"a":' * self.depth
        return opened + '{"type":"string"}' + "}}" * self.depth


def _dumps(value: Any) -> str:
    if isinstance(value, Nested):
        return value.text()
    if isinstance(value, dict):
        return "{" + ",".join(f"{orjson.dumps(k).decode()}:{_dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dumps(v) for v in value) + "]"
    return orjson.dumps(value).decode()


def post(gateway: Gateway, path: str, body: dict[str, Any], stream: bool = False) -> httpx.Response:
    raw = _dumps({**body, "stream": stream}).encode()
    headers = {"content-type": "application/json"}
    return httpx.post(gateway.url + path, content=raw, headers=headers, timeout=BOUND)


def assert_envelope(path: str, r: httpx.Response, status: int | tuple[int, ...] = 400) -> str:
    assert r.status_code in ((status,) if isinstance(status, int) else status), r.text
    body = r.json()
    if path == "/v1/messages":
        assert body["type"] == "error" and body["error"]["type"] in (
            "invalid_request_error",
            "request_too_large",
        )
        return str(body["error"]["message"])
    assert body["error"]["type"] == "invalid_request_error"
    return str(body["error"]["message"])


def no_chat_reached_the_upstream(sim: SimServer) -> bool:
    return not sim.log.chat_turns()


@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "http://[2002:a9fe:a9fe::]/latest/meta-data/",
        "http://[::169.254.169.254]/",
        "http://[::ffff:0:127.0.0.1]/",
        "http://[fd00:ec2::254]/latest/meta-data/",
    ],
)
@pytest.mark.parametrize(("path", "build"), DIALECTS, ids=["chat", "responses", "messages"])
def test_ipv6_forms_of_private_addresses_are_refused(
    gw: tuple[Gateway, SimServer], path: str, build: Any, url: str
) -> None:
    gateway, sim = gw
    sim.reset()
    message = assert_envelope(path, post(gateway, path, build(image_url=url)))
    assert "private or internal" in message
    assert no_chat_reached_the_upstream(sim)


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/x",
        "http://x.com/a\tb",
        "http://x.com/a\rb",
        "http://x.com:abc/",
        "http://xn--/",
        "http://" + "a" * 64 + ".com/",
    ],
)
@pytest.mark.parametrize(("path", "build"), DIALECTS, ids=["chat", "responses", "messages"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_malformed_client_urls_are_a_400_never_a_500(
    gw: tuple[Gateway, SimServer], path: str, build: Any, url: str, stream: bool
) -> None:
    gateway, _ = gw
    assert "valid URL" in assert_envelope(path, post(gateway, path, build(image_url=url), stream))


def nested(depth: int) -> Nested:
    return Nested(depth)


@pytest.mark.parametrize("depth", [495, 100])  # two levels each: 990 and 200 deep
@pytest.mark.parametrize(("path", "build"), DIALECTS, ids=["chat", "responses", "messages"])
def test_deeply_nested_tool_schemas_are_a_400(
    gw: tuple[Gateway, SimServer], path: str, build: Any, depth: int
) -> None:
    gateway, sim = gw
    sim.reset()
    message = assert_envelope(path, post(gateway, path, build(tools=nested(depth))))
    assert "nested" in message
    assert no_chat_reached_the_upstream(sim)


@pytest.mark.parametrize(("path", "build"), DIALECTS, ids=["chat", "responses", "messages"])
def test_a_tool_schema_of_ordinary_depth_is_accepted(
    gw: tuple[Gateway, SimServer], path: str, build: Any
) -> None:
    gateway, _ = gw
    r = post(gateway, path, build(tools=nested(20)))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("path", "build"), DIALECTS, ids=["chat", "responses", "messages"])
def test_a_prompt_too_large_for_the_upstream_is_refused_before_any_account(
    gw: tuple[Gateway, SimServer], path: str, build: Any
) -> None:
    gateway, sim = gw
    sim.reset()
    r = post(gateway, path, build(text="x" * (12 * 1024 * 1024)), stream=True)
    message = assert_envelope(path, r, 413)
    assert "prompt" in message
    assert no_chat_reached_the_upstream(sim)
