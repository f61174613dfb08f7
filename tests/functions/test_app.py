"""HTTP behaviour of the edge: auth, envelopes of both dialects, limits, request ids."""

import httpx
import pytest
from pydantic import BaseModel
from starlette.requests import Request
from starlette.routing import Route

from core.errors import Overloaded, RateLimited
from core.settings import Settings
from functions._app import build_app, key_matches
from functions._http import json_response, read_json
from functions._wiring import Deps
from functions.local import create_app


class Body(BaseModel):
    model: str
    n: int = 1


async def echo(request: Request):
    body = await read_json(request, Body)
    if body.model == "crash":
        raise RuntimeError("secret internal detail sk-should-not-leak")
    if body.model == "busy":
        raise Overloaded("Every account is busy.")
    if body.model == "limited":
        raise RateLimited("Slow down.", headers={"retry-after": "7"})
    return json_response(body.model_dump())


def make_client(store_path, **env) -> httpx.AsyncClient:
    settings = Settings.from_env(
        {"GROKGATE_STORE": f"sqlite:///{store_path}", "GROKGATE_MAX_BODY_BYTES": "2000", **env}
    )
    routes = [Route("/v1/echo", echo, methods=["POST"]), Route("/v1/messages", echo, methods=["POST"])]
    app = build_app(routes, deps=Deps(settings=settings))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://gw")


@pytest.fixture
async def client(tmp_path):
    async with make_client(tmp_path / "s.db", GROKGATE_API_KEYS="k1,k2") as c:
        yield c


async def test_both_auth_headers_and_every_key_are_accepted(client):
    for headers in ({"authorization": "Bearer k1"}, {"Authorization": "bearer k2"}, {"x-api-key": "k1"}):
        r = await client.post("/v1/echo", json={"model": "m"}, headers=headers)
        assert r.status_code == 200, headers
        assert r.json() == {"model": "m", "n": 1}


async def test_missing_and_wrong_keys_are_401_in_openai_shape(client):
    r = await client.post("/v1/echo", json={"model": "m"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = await client.post("/v1/echo", json={"model": "m"}, headers={"authorization": "Bearer k3"})
    assert r.status_code == 401
    assert "Incorrect API key" in r.json()["error"]["message"]


async def test_anthropic_route_speaks_anthropic_errors(client):
    r = await client.post("/v1/messages", json={"model": "m"}, headers={"x-api-key": "nope"})
    assert r.status_code == 401
    assert r.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "Incorrect API key provided."},
    }
    r = await client.post("/v1/messages", content=b"{bad", headers={"x-api-key": "k1"})
    assert r.status_code == 400
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error"
    r = await client.post("/v1/messages", json={"model": "busy"}, headers={"x-api-key": "k1"})
    assert r.status_code == 503 and r.json()["error"]["type"] == "overloaded_error"


async def test_open_mode_without_keys(tmp_path):
    async with make_client(tmp_path / "s.db") as c:
        r = await c.post("/v1/echo", json={"model": "m"})
        assert r.status_code == 200


@pytest.mark.parametrize(
    ("content", "message", "param"),
    [
        (b"{not json", "not valid JSON", None),
        (b"", "empty", None),
        (b"[1, 2]", "JSON object", None),
        (b"{}", "Invalid value for 'model': Field required", "model"),
        (b'{"model": "m", "n": "many"}', "Invalid value for 'n'", "n"),
    ],
)
async def test_bad_bodies_are_400_naming_the_field(client, content, message, param):
    r = await client.post(
        "/v1/echo", content=content, headers={"x-api-key": "k1", "content-type": "application/json"}
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert message in error["message"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"


async def test_oversized_body_is_413_declared_or_streamed(client):
    r = await client.post("/v1/echo", content=b"x" * 3000, headers={"x-api-key": "k1"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"

    async def chunks():
        for _ in range(5):
            yield b"x" * 1000

    r = await client.post("/v1/echo", content=chunks(), headers={"x-api-key": "k1"})
    assert r.status_code == 413
    r = await client.post("/v1/messages", content=b"x" * 3000, headers={"x-api-key": "k1"})
    assert r.json()["error"]["type"] == "request_too_large"


async def test_unknown_route_is_json_404_and_wrong_method_405(client):
    r = await client.get("/v1/nothing-here", headers={"x-api-key": "k1"})
    assert r.status_code == 404 and "Unknown route" in r.json()["error"]["message"]
    r = await client.get("/v1/echo", headers={"x-api-key": "k1"})
    assert r.status_code == 405


async def test_unexpected_exception_is_a_500_that_leaks_nothing_and_carries_the_request_id(client, caplog):
    r = await client.post("/v1/echo", json={"model": "crash"}, headers={"x-api-key": "k1"})
    assert r.status_code == 500
    request_id = r.headers["x-request-id"]
    assert request_id.startswith("req_")
    assert "secret internal detail" not in r.text and "RuntimeError" not in r.text
    assert request_id in r.json()["error"]["message"]
    assert r.json()["error"]["type"] == "server_error"
    assert any(request_id in record.getMessage() for record in caplog.records)


async def test_every_response_has_a_request_id_and_error_headers_pass_through(client):
    r = await client.post("/v1/echo", json={"model": "limited"}, headers={"x-api-key": "k1"})
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    assert r.headers["x-request-id"].startswith("req_")


def test_key_comparison():
    assert key_matches("a", ["b", "a"])
    assert not key_matches("a", ["b", "ab"])
    assert not key_matches("", [])


async def test_models_routes(tmp_path):
    settings = Settings.from_env({"GROKGATE_STORE": f"sqlite:///{tmp_path}/s.db", "GROKGATE_API_KEYS": "k"})
    app = create_app(Deps(settings=settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
        r = await c.get("/v1/models", headers={"authorization": "Bearer k"})
        assert r.status_code == 200
        body = r.json()
        assert body["object"] == "list" and len(body["data"]) == 15
        r = await c.get("/v1/models/grok-4.20-0309-reasoning", headers={"x-api-key": "k"})
        assert r.json()["id"] == "grok-4.20-0309-reasoning" and r.json()["object"] == "model"
        r = await c.get("/v1/models/gpt-5", headers={"x-api-key": "k"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
        r = await c.get("/health")
        assert r.status_code == 200 and r.json()["store"] == "ok" and r.json()["version"]


async def test_health_is_503_when_the_store_does_not_answer(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = Settings.from_env({"GROKGATE_STORE": f"sqlite:///{blocker}/s.db"})
    app = create_app(Deps(settings=settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
        r = await c.get("/health")
        assert r.status_code == 503
        assert r.json()["store"] == "unavailable"


def test_building_an_app_settles_the_heap():
    import gc

    from functions._app import GC_THRESHOLDS, build_app

    before = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    try:
        build_app([])
        assert gc.get_freeze_count() > 0  # what the import built is out of the collector's way
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.set_threshold(*before)
