"""The chat transport (infra/upstream/transport.py) on real loopback servers: the simulator, and a
raw asyncio server where a test needs the server's side of the connection (when the client hung
up) or an answer the simulator never gives (Retry-After, an interim 103, gzip)."""

from __future__ import annotations

import asyncio
import gzip
import re
import socket
import time
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from core.protocol.classify import Kind, UpstreamFailure
from core.settings import Settings
from infra.sim.script import expected_answer
from infra.sim.server import SimServer
from infra.upstream.client import CurlUpstream
from infra.upstream.transport import CurlTransport, StreamedResponse
from tests.sim.helpers import CHAT, STATSIG, chat_body

TOKEN = "sim-super-transport"
SIGNED = "A" * 94  # base64 of 70 zero bytes: a well-formed value
# What differs between two answers to the same prompt: ids and timestamps.
FRESH = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d{4}-\d\d-\d\dT[\d:.]+Z")


def make_settings(url: str, **overrides: object) -> Settings:
    return Settings(upstream_url=url, assets_url=url, **overrides)  # type: ignore[arg-type]


def header_lines(token: str = TOKEN) -> list[bytes]:
    return [
        b"content-type: application/json",
        f"cookie: sso={token}; sso-rw={token}".encode(),
        f"x-statsig-id: {STATSIG}".encode(),
    ]


def body(prompt: str) -> bytes:
    return orjson.dumps(chat_body(prompt))


async def read_all(response: StreamedResponse) -> list[bytes]:
    return [chunk async for chunk in response]


@pytest.fixture
async def transport(sim: SimServer) -> AsyncIterator[CurlTransport]:
    t = CurlTransport(make_settings(sim.url), plain_http=True)
    yield t
    await t.aclose()


class RawServer:
    """Answers every request with `answer` (raw bytes) and then waits for the client to hang up;
    `requests` are the raw requests, `hung_up` is set when a client closed its connection."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.hung_up = asyncio.Event()
        self.url = ""
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:  # connections curl keeps alive
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        body = await reader.readexactly(int(length.group(1))) if length else b""
        self.requests.append(head + body)
        writer.write(self.answer)
        await writer.drain()
        while await reader.read(65536):
            pass
        self.hung_up.set()
        writer.close()


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)


async def test_a_200_stream_is_read_to_the_end_with_the_simulators_bytes(
    sim: SimServer, transport: CurlTransport
) -> None:
    prompt = "[user]: tell me #sim tokens=40 delay_ms=2"
    response = await transport.post(sim.url + CHAT, header_lines(), body(prompt))
    assert response.status == 200
    got = b"".join(await read_all(response))
    assert sim.log.last(path=CHAT).json == chat_body(prompt)

    async with httpx.AsyncClient() as client:  # an independent reading of the same script
        expected = (
            await client.post(
                sim.url + CHAT,
                content=body(prompt),
                headers={"cookie": f"sso={TOKEN}; sso-rw={TOKEN}", "x-statsig-id": STATSIG},
            )
        ).content
    assert FRESH.sub(b"-", got) == FRESH.sub(b"-", expected)
    tokens = [
        f["result"]["response"]["token"]
        for f in map(orjson.loads, got.splitlines())
        if "token" in f.get("result", {}).get("response", {})
    ]
    assert "".join(tokens) == expected_answer(prompt, "fast")[1]
    assert (
        transport.open_responses == 0 and transport.idle_handles == 1 and transport.transfers_in_flight == 0
    )


async def test_a_429_answer_gives_its_status_and_body(sim: SimServer, transport: CurlTransport) -> None:
    response = await transport.post(sim.url + CHAT, header_lines("sim-ratelimited-a"), body("hi"))
    assert response.status == 429
    assert orjson.loads(b"".join(await read_all(response)))["error"]["message"] == "Too many requests"


async def test_retry_after_is_kept_and_an_interim_answer_is_skipped(transport: CurlTransport) -> None:
    answer = (
        b"HTTP/1.1 103 Early Hints\r\nretry-after: 1\r\nlink: </a.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\ncontent-type: application/json\r\n"
        b'content-length: 13\r\n\r\n{"error":"x"}'
    )
    async with RawServer(answer) as server:
        response = await transport.post(server.url + CHAT, header_lines(), b"{}")
        assert (response.status, response.headers) == (429, {"retry-after": "7"})
        assert b"".join(await read_all(response)) == b'{"error":"x"}'


async def test_the_client_classifies_a_429_with_its_retry_after() -> None:
    answer = b'HTTP/1.1 429 Too Many Requests\r\nretry-after: 30\r\ncontent-length: 13\r\n\r\n{"error":"x"}'
    async with RawServer(answer) as server:
        # A fixed statsig value: this server answers one canned reply and has no page to scrape.
        upstream = CurlUpstream(make_settings(server.url, statsig="manual", statsig_value=SIGNED))
        try:
            with pytest.raises(UpstreamFailure) as caught:
                await upstream.chat(TOKEN, {"message": "hi"})
        finally:
            await upstream.aclose()
    assert (caught.value.kind, caught.value.status, caught.value.cooldown) == (Kind.RATE_LIMITED, 429, 30.0)


async def test_a_gzip_answer_is_decoded_and_the_request_is_the_callers(transport: CurlTransport) -> None:
    payload = b'{"result":{"response":{"token":"hi"}}}\n' * 50
    packed = gzip.compress(payload)
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(packed), packed)
    )
    async with RawServer(answer) as server:
        lines = [*header_lines(), b"accept-encoding: gzip, deflate, br, zstd"]
        response = await transport.post(server.url + CHAT, lines, b'{"message":"hi"}')
        assert b"".join(await read_all(response)) == payload
    request = server.requests[0]
    assert request.startswith(b"POST /rest/app-chat/conversations/new HTTP/1.1\r\n")
    assert request.endswith(b'\r\n\r\n{"message":"hi"}')
    assert b"\r\naccept-encoding: gzip, deflate, br, zstd\r\n" in request
    assert b"upgrade" not in request.lower() and b"expect" not in request.lower()


async def test_a_refused_connection_is_a_transient_failure(transport: CurlTransport) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(UpstreamFailure) as caught:
        await transport.post(f"http://127.0.0.1:{port}{CHAT}", header_lines(), b"{}")
    assert caught.value.kind is Kind.TRANSIENT
    assert (
        transport.open_responses == 0 and transport.idle_handles == 1 and transport.transfers_in_flight == 0
    )


async def test_upstream_silence_past_the_read_timeout_is_a_timeout_failure(sim: SimServer) -> None:
    # Abandoned after read_timeout (0.5 s) without a byte, headers or body; silence is checked
    # every read_timeout / 4.
    transport = CurlTransport(make_settings(sim.url, connect_timeout=0.2, read_timeout=0.5), plain_http=True)

    async def stalled(directive: str) -> UpstreamFailure:
        with pytest.raises(UpstreamFailure) as caught:
            response = await transport.post(sim.url + CHAT, header_lines(), body(f"hi #sim {directive}"))
            await read_all(response)
        return caught.value

    started = time.monotonic()
    try:
        # Silent before the headers, and silent after the first frames.
        failures = await asyncio.gather(stalled("ttfb_ms=12000"), stalled("tokens=3 delay_ms=12000"))
        assert [f.kind for f in failures] == [Kind.TIMEOUT, Kind.TIMEOUT]
        assert all("silent for 0.5 s" in f.reason for f in failures)
        assert time.monotonic() - started < 3
        assert (
            transport.open_responses == 0
            and transport.idle_handles == 2
            and transport.transfers_in_flight == 0
        )
    finally:
        await transport.aclose()


async def test_a_stream_past_the_total_timeout_fails_as_a_timeout(sim: SimServer) -> None:
    transport = CurlTransport(make_settings(sim.url, total_timeout=0.3), plain_http=True)
    try:
        response = await transport.post(sim.url + CHAT, header_lines(), body("hi #sim tokens=40 delay_ms=30"))
        with pytest.raises(UpstreamFailure) as caught:
            await read_all(response)
        assert caught.value.kind is Kind.TIMEOUT and "total timeout" in caught.value.reason
        assert transport.open_responses == 0 and transport.transfers_in_flight == 0
    finally:
        await transport.aclose()


async def test_aclose_mid_stream_drops_the_connection_and_the_handle_is_reused(
    sim: SimServer, transport: CurlTransport
) -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    async with RawServer(head + chunked(b'{"a":1}\n')) as server:  # then the stream stays open
        response = await transport.post(server.url + CHAT, header_lines(), b"{}")
        assert await response.__anext__() == b'{"a":1}\n'
        await response.aclose()
        await response.aclose()  # idempotent
        await asyncio.wait_for(server.hung_up.wait(), 2)  # the server saw the connection go
        with pytest.raises(StopAsyncIteration):
            await response.__anext__()
    assert (
        transport.open_responses == 0 and transport.idle_handles == 1 and transport.transfers_in_flight == 0
    )

    again = await transport.post(sim.url + CHAT, header_lines(), body("hi"))
    assert again.status == 200 and b"".join(await read_all(again)).endswith(b"\n")
    assert transport.handles_created == 1


async def test_cancelling_a_task_waiting_for_headers_leaks_nothing(
    sim: SimServer, transport: CurlTransport
) -> None:
    task = asyncio.create_task(transport.post(sim.url + CHAT, header_lines(), body("hi #sim ttfb_ms=3000")))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (
        transport.open_responses == 0 and transport.idle_handles == 1 and transport.transfers_in_flight == 0
    )


async def test_cancelling_a_task_waiting_for_data_leaks_nothing(
    sim: SimServer, transport: CurlTransport
) -> None:
    response = await transport.post(sim.url + CHAT, header_lines(), body("hi #sim tokens=3 delay_ms=3000"))
    first = await response.__anext__()  # the frames before the first paced token
    assert first
    task = asyncio.create_task(response.__anext__())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (
        transport.open_responses == 0 and transport.idle_handles == 1 and transport.transfers_in_flight == 0
    )
    with pytest.raises(UpstreamFailure):  # not a clean end: the rest of the answer was never read
        await response.__anext__()
    await response.aclose()  # still fine afterwards


async def test_sequential_requests_reuse_one_handle(sim: SimServer, transport: CurlTransport) -> None:
    for n in range(5):
        response = await transport.post(sim.url + CHAT, header_lines(), body(f"question {n}"))
        assert response.status == 200
        await read_all(response)
    assert transport.handles_created == 1 and transport.idle_handles == 1
    # Each request carried its own header lines only (curl_cffi appends to a handle's list).
    assert all(len(r.headers.get("x-statsig-id", "").split(",")) == 1 for r in sim.log.find(path=CHAT))


def test_a_new_event_loop_gets_a_new_multi_and_pool(sim: SimServer) -> None:
    transport = CurlTransport(make_settings(sim.url), plain_http=True)

    async def one_request() -> bytes:
        response = await transport.post(sim.url + CHAT, header_lines(), body("hi"))
        return b"".join(await read_all(response))

    for _ in range(2):  # each under its own event loop
        assert b'"token"' in asyncio.run(one_request())
    assert transport.handles_created == 2 and transport.idle_handles == 1  # the old loop's pool is gone
    assert transport.multis_freed == 1  # and its multi with it: its loop is closed
    asyncio.run(transport.aclose())


async def test_a_slow_reader_pauses_the_transfer_and_loses_nothing(sim: SimServer) -> None:
    transport = CurlTransport(make_settings(sim.url), plain_http=True, max_buffered=8192)
    prompt = "[user]: a long one #sim tokens=3000"
    try:
        response = await transport.post(sim.url + CHAT, header_lines(), body(prompt))
        chunks = [await response.__anext__()]
        await asyncio.sleep(0.3)  # the simulator wrote everything at once: curl had it all to give
        assert response.paused
        chunks += await read_all(response)
        assert max(map(len, chunks)) < 8192 + 65536
        text = "".join(
            f["result"]["response"]["token"]
            for f in map(orjson.loads, b"".join(chunks).splitlines())
            if "token" in f.get("result", {}).get("response", {})
        )
        assert text == expected_answer(prompt, "fast")[1]

        # Closed while paused, the handle still serves the next request.
        response = await transport.post(sim.url + CHAT, header_lines(), body(prompt))
        await response.__anext__()
        await asyncio.sleep(0.2)
        assert response.paused
        await response.aclose()
        again = await transport.post(sim.url + CHAT, header_lines(), body("hi"))
        assert b"".join(await read_all(again)).endswith(b"\n")
        assert transport.handles_created == 1 and transport.transfers_in_flight == 0
    finally:
        await transport.aclose()


async def test_close_fails_the_open_streams(sim: SimServer) -> None:
    transport = CurlTransport(make_settings(sim.url), plain_http=True)
    response = await transport.post(sim.url + CHAT, header_lines(), body("hi #sim tokens=3 delay_ms=3000"))
    await transport.aclose()
    with pytest.raises(UpstreamFailure) as caught:
        await read_all(response)
    assert caught.value.kind is Kind.TRANSIENT
