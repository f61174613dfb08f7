"""functions._sse, the one streaming loop of the three chat dialects: whatever the stream does
(ends, fails with a gateway error, crashes, stops without an end), the last write is the
dialect's own terminal event, read back by the official SDKs."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
from anthropic.types import RawMessageStreamEvent
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from core.errors import Overloaded
from core.events import Event, Finish, TextDelta, Usage
from core.transcode.anthropic import MessagesState
from core.transcode.openai_chat import ChatCompletionState
from core.transcode.responses import ResponsesState
from functions._answer import Final
from functions._sse import CHAT, MESSAGES, RESPONSES, Framer, sse


class Script:
    """A chat stream that yields `batches`, then raises `error` (if any); records its close."""

    def __init__(self, batches: list[list[Event]], error: BaseException | None = None) -> None:
        self.batches = batches
        self.error = error
        self.closed = False

    async def _run(self) -> AsyncGenerator[list[Event], None]:
        for batch in self.batches:
            yield batch
        if self.error is not None:
            raise self.error

    def __aiter__(self) -> AsyncIterator[list[Event]]:
        return self._run()

    async def aclose(self) -> None:
        self.closed = True


ANSWER = [[TextDelta("Hel")], [TextDelta("lo"), Usage(2, 2), Finish()]]
CUT = [[TextDelta("Hel")]]  # no end
ENDINGS = {
    "ends": (ANSWER, None),
    "gateway_error": (CUT, Overloaded("busy")),
    "crash": (CUT, RuntimeError("bug")),
    "stops_without_an_end": (CUT, None),
}
DIALECTS = {
    "chat": (lambda: ChatCompletionState("m", collect=False), CHAT),
    "messages": (lambda: MessagesState("m"), MESSAGES),
    "responses": (lambda: ResponsesState("m"), RESPONSES),
}


async def drive(state: Any, framer: Framer, script: Script, **kw: Any) -> list[bytes]:
    return [piece async for piece in sse(state, script, framer, **kw)]


def response(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, request=httpx.Request("POST", "http://gateway.test"))


def events(body: bytes) -> list[tuple[str | None, dict[str, Any] | str]]:
    out: list[tuple[str | None, dict[str, Any] | str]] = []
    for block in body.decode().split("\n\n"):
        if not block:
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        data = lines["data"]
        out.append((lines.get("event"), data if data == "[DONE]" else orjson.loads(data)))
    return out


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("ending", ENDINGS)
async def test_every_stream_ends_with_its_terminal_event_in_the_last_write(dialect: str, ending: str) -> None:
    make, framer = DIALECTS[dialect]
    batches, error = ENDINGS[ending]
    script = Script(batches, error)
    pieces = await drive(make(), framer, script)
    assert script.closed
    assert type(pieces[-1]) is Final and all(type(p) is not Final for p in pieces[:-1])
    last = events(pieces[-1])
    failed = ending != "ends"
    if dialect == "chat":
        assert last[-1] == (None, "[DONE]")
        assert ("error" in last[-2][1]) is failed
    elif dialect == "messages":
        assert last[-1][0] == ("error" if failed else "message_stop")
    else:
        assert [name for name, _ in last[-2:]][-1] == ("response.failed" if failed else "response.completed")
        if failed:
            assert last[-2][0] == "error"


@pytest.mark.parametrize("ending", [e for e in ENDINGS if e != "ends"])
async def test_the_openai_sdk_raises_a_chat_stream_that_failed(ending: str) -> None:
    batches, error = ENDINGS[ending]
    body = b"".join(await drive(ChatCompletionState("m"), CHAT, Script(batches, error)))
    client = openai.OpenAI(api_key="k", base_url="http://gateway.test")
    stream = openai.Stream(cast_to=ChatCompletionChunk, response=response(body), client=client)
    seen = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content if chunk.choices else None)
    assert seen == ["", "Hel"]  # the role chunk and the text before the failure
    message = {"gateway_error": "busy", "crash": "The stream of", "stops_without_an_end": "ended without"}
    assert message[ending] in info.value.message


@pytest.mark.parametrize("ending", [e for e in ENDINGS if e != "ends"])
async def test_the_anthropic_sdk_raises_a_messages_stream_that_failed(ending: str) -> None:
    batches, error = ENDINGS[ending]
    body = b"".join(await drive(MessagesState("m"), MESSAGES, Script(batches, error)))
    client = anthropic.Anthropic(api_key="k", base_url="http://gateway.test")
    stream = anthropic.Stream(cast_to=RawMessageStreamEvent, response=response(body), client=client)  # type: ignore[arg-type]
    with pytest.raises(anthropic.APIStatusError):
        for _ in stream:
            pass


async def test_responses_events_are_the_sdk_types_and_stored_before_the_end() -> None:
    state = ResponsesState("m")
    saved: list[str] = []

    async def save() -> None:
        saved.append(state.status)

    pieces = await drive(state, RESPONSES, Script(*ENDINGS["crash"]), before_end=save)
    adapter = TypeAdapter(ResponseStreamEvent)
    for _, data in events(b"".join(pieces)):
        adapter.validate_python(data)
    assert saved == ["failed"]


async def test_a_chat_answer_writes_its_finish_and_done_together() -> None:
    pieces = await drive(ChatCompletionState("m", include_usage=True), CHAT, Script(ANSWER))
    assert len(pieces) == 2  # one write per batch, the role chunk with the first
    assert events(pieces[0])[0][1]["choices"][0]["delta"]["role"] == "assistant"  # type: ignore[index]
    *chunks, done = [data for _, data in events(pieces[1])]
    assert done == "[DONE]"
    assert [c["choices"][0]["finish_reason"] if c["choices"] else "usage" for c in chunks] == [  # type: ignore[index]
        None,
        "stop",
        "usage",
    ]
