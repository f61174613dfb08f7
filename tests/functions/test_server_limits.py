"""functions._server against hostile clients, over raw sockets on a real server (issue 18, rows 1, 5, 9, 11).

The gateway app runs under the protocol `grokgate serve` uses, with small limits set through its
settings; each test asserts what the client gets back and that the server closed the connection
(the socket's timeout is a generous bound, not a measurement).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from core.settings import Settings
from functions._server import ReadLimits, RedactSignatures, protocol_class, redact_query
from functions._wiring import Deps
from tests.fixtures.gateway import Gateway

BOUND = 20.0  # seconds a socket waits for the server before the test fails


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Gateway]:
    from functions.local import create_app

    settings = Settings.from_env(
        {
            "GROKGATE_STORE": f"sqlite:///{tmp_path / 'gate.db'}",
            "GROKGATE_MEDIA": str(tmp_path / "media"),
            "GROKGATE_API_KEYS": "sk-test",
            "GROKGATE_ADMIN_KEY": "adm-test",
            "GROKGATE_MAX_HEADER_BYTES": "8192",
            "GROKGATE_HEADER_TIMEOUT": "0.5",
            "GROKGATE_BODY_TIMEOUT": "0.5",
            "GROKGATE_MAX_BODY_BYTES": str(16 * 1024 * 1024),
        }
    )
    deps = Deps(settings=settings)
    gateway = Gateway(create_app(deps), deps, http=protocol_class(ReadLimits.of(settings))).start()
    try:
        yield gateway
    finally:
        gateway.stop()


_OPEN: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def connect(gateway: Gateway) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=BOUND)
    _OPEN.append(sock)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (fails the test past BOUND)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def answer(raw: bytes) -> tuple[int, dict[bytes, bytes], dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.lower().split(b": ", 1) for line in lines[1:])
    return status, headers, orjson.loads(body)


def test_an_endless_header_is_refused_with_431_before_auth(server: Gateway) -> None:
    sock = connect(server)
    sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Junk: ")
    sent = 0
    try:
        while sent < 64 * 1024 * 1024:  # the 64 MiB; the server stops us long before
            sock.sendall(b"a" * 65536)
            sent += 65536
    except (BrokenPipeError, ConnectionResetError):
        pass
    raw = read_all(sock)
    assert sent < 8 * 1024 * 1024
    if raw:  # a reset may discard the answer in flight; when it arrives, it is the envelope
        status, headers, body = answer(raw)
        assert status == 431
        assert headers[b"content-type"] == b"application/json"
        assert body["error"]["code"] == "request_header_fields_too_large"  # type: ignore[index]


def test_many_headers_within_the_limit_still_reach_auth(server: Gateway) -> None:
    sock = connect(server)
    junk = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 50) for i in range(100))  # ~6 KiB < 8 KiB
    sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + junk + b"\r\n")
    status, _, body = answer(read_all(sock))
    assert status == 401 and body["error"]["code"] == "invalid_api_key"  # type: ignore[index]


def test_a_half_sent_head_is_answered_408_and_closed(server: Gateway) -> None:
    sock = connect(server)
    sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")  # ... and nothing more
    status, headers, body = answer(read_all(sock))
    assert status == 408 and headers[b"connection"] == b"close"
    assert body["error"]["code"] == "request_timeout"  # type: ignore[index]


def test_a_connection_that_says_nothing_is_closed(server: Gateway) -> None:
    sock = connect(server)
    status, _, _ = answer(read_all(sock))
    assert status == 408


def test_many_slowloris_connections_are_all_closed(server: Gateway) -> None:
    socks = [connect(server) for _ in range(50)]
    for sock in socks:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    for sock in socks:
        assert answer(read_all(sock))[0] == 408
        sock.close()


def test_a_body_that_stops_arriving_is_answered_408(server: Gateway) -> None:
    sock = connect(server)
    sock.sendall(
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: sk-test\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + b'{"model": "'
    )
    status, _, body = answer(read_all(sock))
    assert status == 408
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


def test_a_keep_alive_connection_serves_a_second_request_after_the_first(server: Gateway) -> None:
    sock = connect(server)
    for _ in range(2):
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200")
    sock.close()


@pytest.mark.parametrize(("path", "anthropic"), [("/v1/chat/completions", False), ("/v1/messages", True)])
def test_a_malformed_request_is_a_json_400_in_the_routes_envelope(
    server: Gateway, path: str, anthropic: bool
) -> None:
    sock = connect(server)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{{}}".encode()
    )
    status, headers, body = answer(read_all(sock))
    assert status == 400 and headers[b"content-type"] == b"application/json"
    if anthropic:
        assert body["type"] == "error"
        assert "Duplicate Content-Length" in body["error"]["message"]  # type: ignore[index]
    else:
        assert body["error"]["code"] == "invalid_http_request"  # type: ignore[index]
        assert "Duplicate Content-Length" in body["error"]["message"]  # type: ignore[index]


def test_an_invalid_method_is_a_json_400(server: Gateway) -> None:
    sock = connect(server)
    sock.sendall(b"G\x01T / HTTP/1.1\r\n\r\n")
    status, _, body = answer(read_all(sock))
    assert status == 400 and body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


def test_an_admin_import_over_its_limit_is_413(server: Gateway) -> None:
    import httpx

    big = b"sso-token-xxxxxxxxxxxxxxxxxxxx\n" * (9 * 1024 * 1024 // 31)
    r = httpx.post(
        f"{server.url}/admin/api/accounts/import",
        content=big,
        headers={"authorization": "Bearer adm-test"},
        timeout=BOUND,
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"


def test_signed_link_parameters_never_reach_the_access_log() -> None:
    path = "/v1/files/f_1/content?exp=1700000000&sig=AbCdEf123"
    assert redact_query(path) == "/v1/files/f_1/content?exp=1700000000&sig=…"
    s3 = "/m/x.png?X-Amz-Credential=AKIA%2F&X-Amz-Signature=deadbeef&x=1"
    assert "deadbeef" not in redact_query(s3) and "AKIA" not in redact_query(s3)
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", path, "1.1", 200),
        None,
    )
    assert RedactSignatures().filter(record)
    assert "AbCdEf123" not in record.getMessage() and "sig=…" in record.getMessage()
