"""The one streaming loop of the chat dialects: an accumulator over the chat service's batches,
one write per batch, and always the dialect's terminal event.

Each dialect differs only in its framer: chat completions write `data: {...}` lines and end with
`data: [DONE]`; Messages and Responses write `event:` + `data:` lines and end with their own
lifecycle event. Whatever happens (a `GatewayError`, a crash, an upstream that stops without an
end), the accumulator `fail`s and its error and terminal event go out together with
the end of the body (`Final`), so no stream ends silently.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from core.errors import GatewayError, InternalError, UpstreamError
from functions._answer import Final, PushFrom

if TYPE_CHECKING:  # the dialects' modules load with their routes' first request
    from core.transcode.answer import Accumulator, Stream

log = logging.getLogger("grokgate.sse")


class Framer(NamedTuple):
    """A dialect's SSE framing: outbound events -> bytes, and what follows its terminal event."""

    frame: Callable[[list[Any]], bytes]
    tail: bytes = b""


def _data_lines(chunks: list[dict[str, Any]]) -> bytes:
    dumps = orjson.dumps
    return b"".join([b"data: " + dumps(chunk) + b"\n\n" for chunk in chunks])


def _named_events(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    dumps = orjson.dumps
    return b"".join(
        [b"event: " + name.encode() + b"\ndata: " + dumps(data) + b"\n\n" for name, data in events]
    )


def _typed_events(events: list[dict[str, Any]]) -> bytes:
    dumps = orjson.dumps
    return b"".join([b"event: " + e["type"].encode() + b"\ndata: " + dumps(e) + b"\n\n" for e in events])


CHAT = Framer(_data_lines, b"data: [DONE]\n\n")  # an error chunk is `{"error": {...}}`: the SDKs raise it
MESSAGES = Framer(_named_events)  # (event name, data) pairs
RESPONSES = Framer(_typed_events)  # the event name is the data's `type`


async def sse(
    state: Accumulator[Any],
    stream: Stream,
    framer: Framer,
    *,
    before_end: Callable[[], Awaitable[None]] | None = None,
) -> AsyncGenerator[bytes | PushFrom, None]:
    """The lifecycle head goes out with the first batch; the terminal event (and the framer's
    tail) in the same write as the end of the body. `before_end` runs just before that write
    (Responses stores the finished response there, so a client that retrieves it on
    `response.completed` finds it)."""
    frame = framer.frame
    handle = state.handle
    pushing = not hasattr(stream, "push_to")
    try:
        head = state.start()
        try:
            async for batch in stream:
                out = handle(batch)
                if head:
                    out = head + out
                    head = []
                if state.ended:
                    break
                if out:
                    yield frame(out)
                if not pushing:  # text after the head may go out as it arrives (text never ends it)
                    pushing = True
                    yield PushFrom(stream, lambda batch: frame(handle(batch)))
            else:
                out = head + state.fail(UpstreamError("The upstream stream ended without an end."))
        except GatewayError as exc:
            out = head + state.fail(exc)
        except Exception:
            log.exception("stream %s crashed", state.id)
            out = head + state.fail(InternalError(f"The stream of {state.id} failed."))
        if before_end is not None:
            await before_end()
        yield Final(frame(out) + framer.tail)
    finally:
        await stream.aclose()
