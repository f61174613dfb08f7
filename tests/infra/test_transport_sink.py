"""`StreamedResponse.set_sink`: a parked reader's bytes handed over at the end of each curl socket
action instead of waking the reader, against the simulator on loopback."""

from __future__ import annotations

import asyncio

from infra.sim.server import SimServer
from infra.upstream.transport import CurlTransport
from tests.infra.test_upstream_transport import body, header_lines, make_settings
from tests.sim.helpers import CHAT

SPACED = "[user]: slow #sim tokens=30 delay_ms=2"


async def whole(sim: SimServer, prompt: str) -> bytes:
    """The answer as a plain reader gets it (ids and times differ between answers: compare sizes)."""
    transport = CurlTransport(make_settings(sim.url), plain_http=True)
    try:
        response = await transport.post(sim.url + CHAT, header_lines(), body(prompt))
        return b"".join([chunk async for chunk in response])
    finally:
        await transport.aclose()


async def test_a_sink_takes_the_spaced_body_and_the_reader_wakes_only_for_the_end(sim: SimServer) -> None:
    transport = CurlTransport(make_settings(sim.url), plain_http=True)
    try:
        response = await transport.post(sim.url + CHAT, header_lines(), body(SPACED))
        sunk: list[bytes] = []
        assert response.set_sink(lambda data: sunk.append(data) is None)
        reads = [chunk async for chunk in response]
        # What came with the headers was already the reader's; after that, everything went to
        # the sink and the reader only saw the end.
        assert len(reads) <= 1 and b'"token"' not in b"".join(reads)
        assert len(sunk) >= 20  # one hand-over per token read, not one at the end
        text = b"".join(reads + sunk)
        assert text.count(b'"token"') >= 30 and len(text) == len(await whole(sim, SPACED))
        assert transport.open_responses == 0 and transport.idle_handles == 1
    finally:
        await transport.aclose()


async def test_a_sink_that_declines_wakes_the_reader_and_nothing_is_lost(sim: SimServer) -> None:
    transport = CurlTransport(make_settings(sim.url), plain_http=True)
    try:
        response = await transport.post(sim.url + CHAT, header_lines(), body(SPACED))
        sunk: list[bytes] = []
        calls = 0

        def every_other(data: bytes) -> bool:
            nonlocal calls
            calls += 1
            sunk.append(data)  # taken either way; False asks for the reader
            return calls % 2 == 0

        assert response.set_sink(every_other)
        reads = []
        async for chunk in response:
            reads.append(chunk)
            sunk.append(chunk)  # what arrived after the declined hand-over, in order
        assert b"" in reads  # a declined hand-over wakes the reader with an empty read
        assert len(b"".join(sunk)) == len(await whole(sim, SPACED))
        assert b"".join(sunk).count(b'"token"') >= 30
    finally:
        await transport.aclose()


async def test_the_sink_can_be_removed_and_a_pacing_window_refuses_one(sim: SimServer) -> None:
    transport = CurlTransport(make_settings(sim.url), plain_http=True)
    paced = CurlTransport(make_settings(sim.url, stream_pacing_ms=5), plain_http=True)
    try:
        response = await transport.post(sim.url + CHAT, header_lines(), body(SPACED))
        chunks = aiter(response)
        head = await anext(chunks)  # what came with the headers
        sunk: list[bytes] = []
        assert response.set_sink(lambda data: sunk.append(data) is None)
        parked = asyncio.ensure_future(anext(chunks))
        await asyncio.sleep(0.02)
        assert sunk and not parked.done()  # tokens went to the sink, the reader still waits
        response.set_sink(None)  # from now on the reader gets them
        reads = [await parked] + [chunk async for chunk in chunks]
        assert len(b"".join([head, *sunk, *reads])) == len(await whole(sim, SPACED))

        other = await paced.post(sim.url + CHAT, header_lines(), body(SPACED))
        assert not other.set_sink(lambda data: True)
        assert b"".join([chunk async for chunk in other]).count(b'"token"') >= 30
    finally:
        await transport.aclose()
        await paced.aclose()


async def test_cancelling_a_reader_parked_with_a_sink_aborts_the_transfer(sim: SimServer) -> None:
    transport = CurlTransport(make_settings(sim.url), plain_http=True)
    try:
        response = await transport.post(
            sim.url + CHAT, header_lines(), body("[user]: long #sim tokens=400 delay_ms=5")
        )
        sunk: list[bytes] = []
        response.set_sink(lambda data: sunk.append(data) is None)
        chunks = aiter(response)
        await anext(chunks)  # what came with the headers
        reader = asyncio.ensure_future(anext(chunks))
        await asyncio.sleep(0.1)
        assert sunk and not reader.done()  # tokens flow to the sink while the reader waits
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        assert transport.open_responses == 0
        seen = len(sunk)
        await asyncio.sleep(0.1)
        assert len(sunk) == seen  # the transfer is gone: nothing more reaches the sink
    finally:
        await transport.aclose()
