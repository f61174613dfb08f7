"""The stream of a media answer in chat completions ends with [DONE] on every path: done, a
gateway error, a crash (the client sees an error chunk, never a body that just stops)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from core.errors import UpstreamError
from core.transcode.openai_media_chat import MediaAnswer
from functions.routes.chat_media import stream_answer


class _Work:
    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure

    async def progress(self) -> AsyncIterator[str]:
        yield "Generating 1 image(s)…"
        yield ""  # only time passes

    async def content(self) -> str:
        if self.failure is not None:
            raise self.failure
        return "![image 1](https://gw/m)"


def _events(work: _Work) -> list[bytes]:
    async def read() -> bytes:
        return b"".join([part async for part in stream_answer(MediaAnswer("grok-imagine-image"), work)])

    return asyncio.run(read()).split(b"\n\n")[:-1]


def _data(event: bytes) -> dict:
    return orjson.loads(event.removeprefix(b"data: "))


def test_progress_then_the_content_then_stop_and_done():
    events = _events(_Work())
    assert events[2] == b": progress"  # an SSE comment keeps the connection alive
    assert _data(events[1])["choices"][0]["delta"] == {"reasoning_content": "Generating 1 image(s)…\n"}
    assert _data(events[3])["choices"][0]["delta"] == {"content": "![image 1](https://gw/m)"}
    assert _data(events[4])["choices"][0]["finish_reason"] == "stop"
    assert events[-1] == b"data: [DONE]"


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (UpstreamError("The video failed: blocked", code="video_generation_failed"), "upstream_error"),
        (RuntimeError("a bug"), "server_error"),
    ],
)
def test_a_failure_after_the_first_byte_is_an_error_chunk_then_done(failure, kind):
    events = _events(_Work(failure))
    error = _data(events[-2])["error"]
    assert error["type"] == kind and "a bug" not in error["message"]
    assert events[-1] == b"data: [DONE]"
