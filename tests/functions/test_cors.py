"""CORS (GROKGATE_CORS_ORIGINS): off by default; for an allowed origin the preflight is answered
before auth, and every answer (errors and streams too) names the origin. A real gateway on
loopback, called with httpx as a browser would, and once by headless Chromium itself."""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.catalog import Tier
from infra.sim.server import SimServer
from tests.fixtures.gateway import Gateway, start_gateway

APP = "http://app.example.test"
KEY = "sk-cors-test"
PREFLIGHT = {
    "origin": APP,
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type",
}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    server = SimServer().start()
    yield server
    server.stop()


@pytest.fixture
def start(sim: SimServer, tmp_path: Path) -> Iterator:
    started: list[Gateway] = []

    def start(origins: str | None) -> Gateway:
        env = {"GROKGATE_UPSTREAM_URL": sim.url, "GROKGATE_ASSETS_URL": sim.url, "GROKGATE_API_KEYS": KEY}
        if origins is not None:
            env["GROKGATE_CORS_ORIGINS"] = origins
        gw = start_gateway(env, tmp_path, [("sim-super-cors-1", Tier.SUPER)])
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


def test_off_by_default_no_browser_access(start):
    gw = start(None)
    r = httpx.options(gw.url + "/v1/chat/completions", headers=PREFLIGHT)
    assert r.status_code == 401 and "access-control-allow-origin" not in r.headers
    r = httpx.get(gw.url + "/v1/models", headers={"origin": APP, "authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_preflight_for_an_allowed_origin_needs_no_key(start):
    gw = start(f"{APP}, http://other.test")
    r = httpx.options(gw.url + "/v1/chat/completions", headers=PREFLIGHT)
    assert r.status_code == 204 and r.content == b""
    assert r.headers["access-control-allow-origin"] == APP
    assert "POST" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"] == "authorization, content-type"
    assert r.headers["x-request-id"].startswith("req_")
    # An origin not on the list gets nothing from CORS: the preflight is an ordinary, refused request.
    stranger = httpx.options(
        gw.url + "/v1/chat/completions", headers={**PREFLIGHT, "origin": "http://evil.test"}
    )
    assert stranger.status_code == 401 and "access-control-allow-origin" not in stranger.headers


def test_answers_to_an_allowed_origin_carry_the_headers_errors_and_streams_too(start):
    gw = start(APP)
    auth = {"origin": APP, "authorization": f"Bearer {KEY}"}
    models = httpx.get(gw.url + "/v1/models", headers=auth)
    assert models.status_code == 200 and models.headers["access-control-allow-origin"] == APP
    assert "x-request-id" in models.headers["access-control-expose-headers"]
    refused = httpx.get(gw.url + "/v1/models", headers={"origin": APP, "authorization": "Bearer wrong"})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == APP
    body = {"model": "grok-4.20-0309", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", gw.url + "/v1/chat/completions", headers=auth, json=body) as stream:
        assert stream.status_code == 200 and stream.headers["access-control-allow-origin"] == APP
        assert "data: [DONE]" in "".join(stream.iter_text())


def test_any_origin_with_a_star(start):
    gw = start("*")
    r = httpx.options(gw.url + "/v1/models", headers={**PREFLIGHT, "origin": "http://anything.test"})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "http://anything.test"


PAGE = """<!doctype html><html><body><pre id="out">pending</pre><script>
fetch("GATEWAY/v1/chat/completions", {method: "POST",
  headers: {"Authorization": "Bearer KEY", "Content-Type": "application/json"},
  body: JSON.stringify({model: "grok-4.20-0309", messages: [{role: "user", content: "hi"}]})})
 .then(r => r.json().then(j => "status " + r.status + " id " + (j.id || "") + " rid " + r.headers.get("x-request-id")))
 .catch(e => "failed " + e)
 .then(t => { document.getElementById("out").textContent = t; });
</script></body></html>"""


@pytest.mark.parametrize("allowed", [True, False])
def test_a_real_browser_fetch_from_another_origin(start, allowed):
    page_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    origin = f"http://127.0.0.1:{page_server.server_address[1]}"
    gw = start(origin if allowed else "http://elsewhere.test")
    html = PAGE.replace("GATEWAY", gw.url.replace("127.0.0.1", "localhost")).replace("KEY", KEY).encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: object) -> None:
            pass

    page_server.RequestHandlerClass = Page
    thread = threading.Thread(target=page_server.serve_forever, daemon=True)
    thread.start()
    try:
        dom = subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--virtual-time-budget=15000",
                "--dump-dom",
                origin + "/",
            ],
            capture_output=True,
            text=True,
            timeout=90,
        ).stdout
    finally:
        page_server.shutdown()
        page_server.server_close()
    if allowed:
        assert "status 200 id chatcmpl" in dom and "rid req_" in dom, dom
    else:
        assert "failed TypeError" in dom, dom  # the browser itself refuses: no CORS headers came back
