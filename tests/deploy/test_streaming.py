"""Proof that the deployables behave on their platforms.

1. Streaming: the chat deployable starts exactly as the Lambda Web Adapter starts it (`run.sh`,
   uvicorn on loopback) in front of the Grok simulator, and SSE chunks arrive one by one.
2. Buffered: the Mangum handlers answer API Gateway v2 (HTTP API) and Function URL events.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from core.accounts import NewAccount
from core.catalog import MODELS, Tier
from core.settings import Settings
from functions import chat, models
from functions._lambda import lambda_handler
from functions._wiring import Deps
from infra.sim.server import SimServer
from infra.state.sqlite import SQLiteAccountStore

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-deploy-test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def seed(store_url: str, token: str) -> None:
    store = SQLiteAccountStore.from_url(store_url)
    try:
        await store.add([NewAccount(token, Tier.BASIC)], time.time())
    finally:
        await store.aclose()


@pytest.fixture
def sim():
    server = SimServer(accept_any=True).start()
    yield server
    server.stop()


@pytest.fixture
async def lwa_chat(sim, tmp_path):
    """`run.sh` with the environment serverless.yml gives the chat function, on a loopback port."""
    store = f"sqlite:///{tmp_path / 'state.db'}"
    await seed(store, "sso-deploy-test")
    port = free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "LAMBDA_TASK_ROOT": str(ROOT),
        "ASGI_APP": "functions.chat:app",
        "AWS_LWA_PORT": str(port),
        "GROKGATE_API_KEYS": KEY,
        "GROKGATE_STORE": store,
        "GROKGATE_MEDIA": str(tmp_path / "media"),
        "GROKGATE_UPSTREAM_URL": sim.url,
        "GROKGATE_ASSETS_URL": sim.url,
        "GROKGATE_ACCOUNTS_URL": sim.url,
        "GROKGATE_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        ["sh", str(ROOT / "run.sh")], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        # LWA's readiness check in TCP mode: the port accepts a connection.
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"run.sh exited with {process.returncode}:\n{output}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("uvicorn did not listen within 30 s")
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stdout:
            process.stdout.close()


async def test_chat_streams_sse_chunks_incrementally_behind_the_lwa_start_script(lwa_chat):
    body = {
        "model": "grok-4.20-0309-non-reasoning",
        "stream": True,
        "messages": [{"role": "user", "content": "Count for me. #sim tokens=8 delay_ms=200"}],
    }
    arrivals: list[tuple[float, str]] = []
    async with httpx.AsyncClient(base_url=lwa_chat, timeout=30) as client:
        started = time.monotonic()
        async with client.stream(
            "POST", "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"}
        ) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            assert "content-length" not in response.headers
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    arrivals.append((time.monotonic() - started, line[6:]))
    assert arrivals[-1][1] == "[DONE]"
    content = [
        (at, chunk)
        for at, chunk in arrivals[:-1]
        if (json.loads(chunk)["choices"] or [{}])[0].get("delta", {}).get("content")
    ]
    assert len(content) >= 5, arrivals
    first, last = content[0][0], content[-1][0]
    # 8 tokens 200 ms apart: buffered, they would all land within a few ms of each other.
    assert last - first >= 0.8, [round(at, 3) for at, _ in content]
    assert first < arrivals[-1][0] - 0.8
    distinct = {round(at, 1) for at, _ in content}
    assert len(distinct) >= 4


# Mangum: API Gateway v2 (HTTP API) and Function URL events --------------------------------------


def event(
    method: str,
    path: str,
    *,
    source: str = "http-api",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    base64_body: bool = False,
    query: str = "",
) -> dict[str, Any]:
    """A payload-2.0 event, as an HTTP API route or a Function URL sends it."""
    domain = (
        "abc123.execute-api.eu-west-1.amazonaws.com"
        if source == "http-api"
        else "xyz.lambda-url.eu-west-1.on.aws"
    )
    route_key = f"{method} {path}" if source == "http-api" else "$default"
    payload: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "host": domain,
            "x-forwarded-proto": "https",
            "x-forwarded-port": "443",
            **(headers or {}),
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": domain.split(".")[0],
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "pytest",
            },
            "requestId": "req-1",
            "routeKey": route_key,
            "stage": "$default",
            "time": "25/Nov/2026:04:00:00 +0000",
            "timeEpoch": 1795579200000,
        },
        "isBase64Encoded": base64_body,
    }
    if body is not None:
        payload["body"] = base64.b64encode(body).decode() if base64_body else body.decode()
    return payload


CONTEXT = SimpleNamespace(function_name="grokgate-test-models", aws_request_id="req-1")


@pytest.fixture
def deps(tmp_path):
    settings = Settings.from_env(
        {"GROKGATE_API_KEYS": KEY, "GROKGATE_STORE": f"sqlite:///{tmp_path / 's.db'}"}
    )
    value = Deps(settings=settings)
    apps = [models.app, chat.app]
    before = [getattr(app.state, "deps", None) for app in apps]
    for app in apps:
        app.state.deps = value
    yield value
    for app, old in zip(apps, before, strict=True):
        app.state.deps = old


def invoke(handler: Any, payload: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    # Mangum drives the app on the thread's event loop, as the Lambda runtime does: run it off
    # the test's loop, in a thread of its own.
    def call() -> dict[str, Any]:
        asyncio.set_event_loop(asyncio.new_event_loop())
        try:
            result: dict[str, Any] = handler(payload, CONTEXT)
            return result
        finally:
            asyncio.get_event_loop().close()
            asyncio.set_event_loop(None)

    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        response = pool.submit(call).result(30)
    raw = response["body"]
    text = base64.b64decode(raw).decode() if response.get("isBase64Encoded") else raw
    return response["statusCode"], response["headers"], json.loads(text) if text else None


@pytest.mark.parametrize("source", ["http-api", "function-url"])
def test_models_handler_lists_the_catalog(deps, source):
    status, headers, body = invoke(
        models.handler, event("GET", "/v1/models", source=source, headers={"authorization": f"Bearer {KEY}"})
    )
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["x-request-id"].startswith("req_")
    assert body["object"] == "list"
    assert len(body["data"]) == len(MODELS) == 15


@pytest.mark.parametrize("source", ["http-api", "function-url"])
def test_models_handler_answers_a_bad_key_with_the_openai_401_envelope(deps, source):
    status, _, body = invoke(
        models.handler, event("GET", "/v1/models", source=source, headers={"authorization": "Bearer wrong"})
    )
    assert status == 401
    assert body["error"]["code"] == "invalid_api_key"
    assert "wrong" not in json.dumps(body)


def test_models_handler_serves_a_path_parameter_with_a_slash(deps):
    model = MODELS[0].id
    status, _, body = invoke(models.handler, event("GET", f"/v1/models/{model}", headers={"x-api-key": KEY}))
    assert status == 200 and body["id"] == model


@pytest.mark.parametrize("base64_body", [False, True])
def test_post_bodies_are_decoded_whether_base64_or_not(deps, base64_body):
    """A POST through Mangum reaches the route intact (here an unknown model, refused before any upstream call)."""
    handler = lambda_handler(chat.app)
    payload = json.dumps({"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}).encode()
    status, _, body = invoke(
        handler,
        event(
            "POST",
            "/v1/chat/completions",
            source="function-url",
            headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"},
            body=payload,
            base64_body=base64_body,
        ),
    )
    assert 400 <= status < 500
    assert "no-such-model" in body["error"]["message"]


def test_invalid_json_body_is_a_400_envelope_not_a_crash(deps):
    status, _, body = invoke(
        lambda_handler(chat.app),
        event(
            "POST",
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"},
            body=b"\xff\xfe not json",
            base64_body=True,
        ),
    )
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
