"""The statsig provider's modes and scraping: parsers on the page shapes the reference describes,
the signer mode against a real signer server on loopback, the manual mode's validation, and
inputs shared through the store."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.protocol.statsig import StatsigInputs, decode, fingerprint, sign, usable
from core.protocol.statsig_page import PageError, chunk_paths, parse_curves, parse_indices, parse_seed
from core.settings import Settings, SettingsError
from infra.sim.server import SimServer
from infra.state.memory_records import MemoryRecords
from infra.upstream.client import CurlUpstream
from infra.upstream.statsig import StatsigUnavailable

CURVE = list(range(11))


def test_page_parsers_accept_each_table_shape_and_name_dashes() -> None:
    seed = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v"
    for dash in "-\u2010\u2013\u2015":
        html = f'<meta content="{seed}" name="grok{dash}site{dash}verification">'
        assert parse_seed(html) == bytes(range(48))
    flat = json.dumps({"curves": [CURVE] * 64})
    nested = json.dumps({"curves": [[CURVE] * 16] * 4})
    escaped = json.dumps(json.dumps({"a": [{"css_class": "r-x", "curves": [CURVE] * 16}] * 4}))
    for text in (flat, nested, escaped):
        curves = parse_curves(text)
        assert len(curves) == 4 and all(len(g) == 16 for g in curves) and curves[3][15] == tuple(CURVE)
    with pytest.raises(PageError):
        parse_curves(json.dumps({"curves": [CURVE] * 10}))
    with pytest.raises(PageError):
        parse_seed('<meta name="grok-site-verification" content="c2hvcnQ=">')
    with pytest.raises(PageError):
        parse_seed("<html></html>")
    html = '<script src="/_next/static/chunks/a-1.js"></script><link href="/_next/static/chunks/a-1.js"><script src="/_next/static/chunks/b.js">'
    assert chunk_paths(html) == ["/_next/static/chunks/a-1.js", "/_next/static/chunks/b.js"]
    assert parse_indices("x=t(e[12], 16)+t(e[3],16)*t(e[40],16)*t(e[7],  16);g=c[e[9]%4]") == (
        (12, 3, 40, 7),
        9,
    )
    assert parse_indices("t(e[12],16)") is None


class _Signer(BaseHTTPRequestHandler):
    seen: list[dict[str, object]] = []
    answer: dict[str, object] = {}

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        _Signer.seen.append(body)
        data = json.dumps(_Signer.answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def signer():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Signer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Signer.seen.clear()
    yield f"http://127.0.0.1:{server.server_port}/sign"
    server.shutdown()
    server.server_close()


async def test_signer_mode_asks_the_signer_with_the_page_meta_and_caches(sim: SimServer, signer: str) -> None:
    # A signer that signs correctly for the simulator's build: the simulator accepts its values.
    page = sim.state.build.page()
    inputs = StatsigInputs(parse_seed(page), sim.state.build.curves, sim.state.build.indices)
    sim.config.statsig = "signed"
    _Signer.answer = {
        "x-statsig-id": sign(
            "POST", "/rest/app-chat/conversations/new", inputs, fingerprint(inputs), __import__("time").time()
        )
    }
    settings = Settings.from_env(
        {
            "GROKGATE_UPSTREAM_URL": sim.url,
            "GROKGATE_STATSIG": "signer",
            "GROKGATE_STATSIG_SIGNER_URL": signer,
        }
    )
    upstream = CurlUpstream(settings)
    try:
        for _ in range(2):
            response = await upstream.chat("sim-super-s", {"message": "hi #sim tokens=2", "modeId": "fast"})
            await response.aclose()
    finally:
        await upstream.aclose()
    assert len(_Signer.seen) == 1  # cached per (method, path)
    request = _Signer.seen[0]
    assert request["method"] == "POST" and request["path"] == "/rest/app-chat/conversations/new"
    assert len(__import__("base64").b64decode(request["environment"]["metaContent"])) == 48  # type: ignore[index]


async def test_a_signer_answer_that_is_not_70_bytes_is_never_sent(sim: SimServer, signer: str) -> None:
    _Signer.answer = {"x-statsig-id": "c2hvcnQ="}
    settings = Settings.from_env(
        {
            "GROKGATE_UPSTREAM_URL": sim.url,
            "GROKGATE_STATSIG": "signer",
            "GROKGATE_STATSIG_SIGNER_URL": signer,
        }
    )
    upstream = CurlUpstream(settings)
    try:
        with pytest.raises(StatsigUnavailable):
            await upstream.statsig.value("POST", "/rest/rate-limits")
    finally:
        await upstream.aclose()
    assert not [r for r in sim.log if r.path == "/rest/rate-limits"]


def test_settings_validate_the_modes() -> None:
    with pytest.raises(SettingsError, match="GROKGATE_STATSIG_SIGNER_URL"):
        Settings.from_env({"GROKGATE_STATSIG": "signer"})
    with pytest.raises(SettingsError, match="GROKGATE_STATSIG_VALUE"):
        Settings.from_env({"GROKGATE_STATSIG": "manual"})
    with pytest.raises(SettingsError, match="70 bytes") as caught:
        Settings.from_env({"GROKGATE_STATSIG": "manual", "GROKGATE_STATSIG_VALUE": "c2hvcnQ="})
    assert "c2hvcnQ" not in str(caught.value)  # a secret: never echoed
    with pytest.raises(SettingsError, match="GROKGATE_PROXY_URLS") as caught:
        Settings.from_env({"GROKGATE_PROXY_URLS": "http://u:pw@h:1,ftp://x"})
    assert "pw" not in str(caught.value)
    s = Settings.from_env(
        {"GROKGATE_PROXY_URLS": "http://a:1, socks5://b:2", "GROKGATE_PROXY_URL": "http://c:3"}
    )
    assert s.egress_proxies() == ("http://a:1", "socks5://b:2")
    assert Settings.from_env({"GROKGATE_PROXY_URL": "http://c:3"}).egress_proxies() == ("http://c:3",)
    assert usable("A" * 94) and decode("A" * 94) is not None


async def test_inputs_are_scraped_once_and_shared_through_the_store(sim: SimServer) -> None:
    records = MemoryRecords()
    settings = Settings(upstream_url=sim.url, assets_url=sim.url)
    one, two = CurlUpstream(settings, records=records), CurlUpstream(settings, records=records)
    try:
        a = await one.statsig.value("POST", "/rest/rate-limits")
        b = await two.statsig.value("POST", "/rest/rate-limits")
        build = await one.statsig.refresh()  # the cron's re-scrape: the chunk is not read again
    finally:
        await one.aclose()
        await two.aclose()
    assert usable(a) and usable(b) and one.statsig.scrapes == 2 and two.statsig.scrapes == 0
    assert build == one.statsig.build
    chunk_reads = [r for r in sim.log if r.path.startswith("/_next/static/chunks/")]
    # The first scrape found the indices in the last listed chunk; the refresh kept them (same chunk name).
    assert len(chunk_reads) == 1
