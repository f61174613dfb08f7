"""The URL fetcher's SSRF guard, against real loopback servers.

Two servers: one on 127.0.0.2 plays a public host (the injected resolver maps `public.test` to it
and `allow` treats that one address as public), one on 127.0.0.1 is the private target.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.errors import InvalidRequest
from core.settings import Settings
from infra.fetch import SafeFetcher, is_public

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


class Handler(BaseHTTPRequestHandler):
    private_port = 0
    bad_location = ""
    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:
        Handler.seen.append((self.path, self.headers.get("cookie")))
        if self.path.startswith("/redirect-private"):
            self._redirect(f"http://127.0.0.1:{Handler.private_port}/secret")
        elif self.path.startswith("/redirect-metadata"):
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif self.path.startswith("/redirect-bad"):
            self._redirect(Handler.bad_location)
        elif self.path.startswith("/redirect-public"):
            self._redirect("/image.png")
        elif self.path.startswith("/big"):
            self._send(b"x" * 5000, "application/octet-stream")
        elif self.path.startswith("/missing"):
            self.send_response(404)
            self.end_headers()
        else:
            self._send(PNG, "image/png")

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("location", location)
        self.send_header("content-length", "0")
        self.end_headers()

    def _send(self, body: bytes, mime: str) -> None:
        self.send_response(200)
        self.send_header("content-type", mime)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def serve(host: str) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers() -> Iterator[tuple[int, int]]:
    public, private = serve("127.0.0.2"), serve("127.0.0.1")
    Handler.private_port = private.server_address[1]
    Handler.seen = []
    yield public.server_address[1], private.server_address[1]
    for server in (public, private):
        server.shutdown()
        server.server_close()


async def resolver(host: str, port: int) -> list[str]:
    return {"public.test": ["127.0.0.2"], "private.test": ["10.1.2.3"], "localhost": ["127.0.0.1"]}[host]


def fetcher(allow_private: bool = False, **env: str) -> SafeFetcher:
    settings = Settings.from_env({"GROKGATE_ALLOW_PRIVATE_FETCH": str(allow_private).lower(), **env})
    return SafeFetcher(settings, resolver=resolver, allow=["127.0.0.2/32"])


async def test_public_target_is_fetched_without_cookies(servers: tuple[int, int]) -> None:
    port, _ = servers
    f = fetcher()
    got = await f.fetch(f"http://public.test:{port}/image.png", param="p")
    assert got.data == PNG and got.mime == "image/png"
    assert Handler.seen == [("/image.png", None)]
    got = await f.fetch(f"http://public.test:{port}/redirect-public", param="p")
    assert got.data == PNG
    await f.aclose()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{private}/secret",
        "http://localhost:{private}/secret",
        "http://[::1]:{private}/secret",
        "http://private.test:{private}/secret",
        "http://169.254.169.254/latest/meta-data/",
        "http://public.test:{public}/redirect-private",
        "http://public.test:{public}/redirect-metadata",
    ],
)
async def test_private_targets_and_redirects_into_them_are_refused(
    servers: tuple[int, int], url: str
) -> None:
    public, private = servers
    f = fetcher()
    with pytest.raises(InvalidRequest, match="private or internal") as info:
        await f.fetch(
            url.format(public=public, private=private), param="messages[0].content[1].image_url.url"
        )
    assert info.value.param == "messages[0].content[1].image_url.url"
    assert ("/secret", None) not in Handler.seen
    await f.aclose()


async def test_allow_private_fetch_lets_loopback_through(servers: tuple[int, int]) -> None:
    public, private = servers
    f = fetcher(allow_private=True)
    assert (await f.fetch(f"http://127.0.0.1:{private}/x.png")).data == PNG
    assert (await f.fetch(f"http://public.test:{public}/redirect-private")).data == PNG
    await f.aclose()


async def test_limits_and_errors(servers: tuple[int, int]) -> None:
    port, _ = servers
    f = fetcher(GROKGATE_FETCH_MAX_BYTES="1000")
    with pytest.raises(InvalidRequest, match="larger than 1000"):
        await f.fetch(f"http://public.test:{port}/big")
    with pytest.raises(InvalidRequest, match="HTTP 404"):
        await f.fetch(f"http://public.test:{port}/missing")
    with pytest.raises(InvalidRequest, match="only http"):
        await f.fetch("file:///etc/passwd")
    await f.aclose()


def test_is_public() -> None:
    assert is_public("8.8.8.8")
    for address in (
        "10.0.0.1",
        "192.168.1.1",
        "172.16.0.1",
        "127.0.0.1",
        "169.254.169.254",
        "100.100.100.200",
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
    ):
        assert not is_public(address), address


MALFORMED = [
    "http://[::1/x",
    "http://a.test/\tx",
    "http://a.test/\rx",
    "http://a.test/\nx",
    "http://x.com:abc/",
    "http://x.com:99999/",
    "http://" + "a" * 64 + ".com/",
    "http://" + "a." * 130 + "com/",
    "http://a..b/",
    "http://xn--/",
    "http:///x",
    "http://",
    "ftp://x.com/",
]


@pytest.mark.parametrize("url", MALFORMED)
async def test_malformed_urls_are_a_400_naming_the_param(url: str) -> None:
    f = fetcher()
    with pytest.raises(InvalidRequest) as info:
        await f.fetch(url, param="input[0].content[1].image_url")
    assert info.value.param == "input[0].content[1].image_url"
    assert "valid URL" in info.value.message or "only http" in info.value.message
    await f.aclose()


async def test_a_redirect_to_a_malformed_url_is_a_400(servers: tuple[int, int]) -> None:
    port, _ = servers
    Handler.bad_location = "http://[::1/x"
    f = fetcher()
    with pytest.raises(InvalidRequest, match="redirects to an invalid URL"):
        await f.fetch(f"http://public.test:{port}/redirect-bad")
    await f.aclose()
