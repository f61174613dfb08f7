"""The HTTP server of the long-running deployables: uvicorn (httptools, uvloop), with writes
coalesced per loop iteration.

Used by `grokgate serve` and by `run.sh` (the streaming Lambda functions, behind the Lambda Web
Adapter): `python -m functions._server` serves the app named by `ASGI_APP`.

Why coalesce: uvicorn writes a response's status line and headers as soon as the app sends
`http.response.start`, and each body message as it comes, each straight to the socket. A
streamed answer whose first batch is ready at once (the hold already read it) thus costs two
send() calls and two TCP segments where one would do. `CoalescingTransport` keeps what is
written during one loop iteration and sends it at the end of that iteration, as one write:
headers and first chunk travel together, a later chunk still leaves within the same iteration
it was written in. On loopback this was about 8% of the gateway's CPU per streamed request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from core.errors import GatewayError, HeadersTooLarge, InvalidRequest, RequestTimeout
from core.settings import Settings

log = logging.getLogger("grokgate.server")


EXTENSION = "grokgate.coalescing"  # the request scope's key for its `CoalescingTransport`


class CoalescingTransport:
    """A transport whose writes within one loop iteration reach the socket as one write.

    Everything but writing and closing is the wrapped transport's. Closing sends what is
    pending first; aborting drops it, as an abort drops the socket's own buffer.

    `immediate` (set around a send made outside the serving task, inside the upstream's read:
    `functions._answer`'s direct writes) writes at once when nothing is pending: that callback is
    the iteration's only writer to this connection, so deferring would only cost a callback.
    The app finds the transport in the request's scope, `scope["extensions"][EXTENSION]`.
    """

    __slots__ = ("_loop", "_pending", "_transport", "immediate")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self.immediate = False

    def write(self, data: bytes) -> None:
        if self.immediate and not self._pending:
            if not self._transport.is_closing():
                self._transport.write(data)
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """What a client may cost before the app sees its request: header bytes and read time."""

    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 60.0

    @classmethod
    def of(cls, settings: Settings) -> ReadLimits:
        return cls(settings.max_header_bytes, settings.header_timeout, settings.body_timeout)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `CoalescingTransport`, with read limits.

    uvicorn (with httptools) bounds neither the size of a request's head nor the time a client
    takes to send it: an endless header grows the parser's buffer without end, and a client that
    sends one header line and waits holds its connection forever (slowloris). Here the head is
    counted as it arrives (431 past `max_header_bytes`, before any auth runs), the head must be
    complete within `header_timeout` of the connection or of the request's first byte, and the
    body within `body_timeout` of the head (408). Malformed requests are answered in the JSON
    envelope rather than uvicorn's plain text. Costs per request: two timer handles.
    """

    limits: ClassVar[ReadLimits] = ReadLimits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
        super().connection_made(coalescing)  # type: ignore[arg-type]
        self._in_head = True
        self._head_bytes = 0
        self._read_timer: asyncio.TimerHandle | None = None
        self._arm(self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()  # no route takes a WebSocket (ws="none")
        except httptools.HttpParserError as exc:
            detail = str(exc.args[0]) if exc.args else type(exc).__name__
            self._reject(InvalidRequest(f"Invalid HTTP request: {detail}.", code="invalid_http_request"))
            return
        if self._in_head and self._head_bytes > self.limits.max_header_bytes:
            self._reject(
                HeadersTooLarge(
                    f"The request line and headers are larger than the limit of "
                    f"{self.limits.max_header_bytes} bytes."
                )
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {EXTENSION: self.transport}  # type: ignore[typeddict-unknown-key]
        if self._read_timer is None:  # a request after an idle keep-alive: its own head deadline
            self._arm(self.limits.header_timeout)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()
        self._arm(self.limits.body_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._in_head = True  # what comes next is the head of the next request
        self._head_bytes = 0

    def send_400_response(self, msg: str) -> None:  # uvicorn's plain-text answer, in our envelope
        self._reject(InvalidRequest(msg, code="invalid_http_request"))

    # -- internals

    def _arm(self, delay: float) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(delay, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self._in_head:
            what = f"headers within {self.limits.header_timeout:g} s"
        else:
            what = f"body within {self.limits.body_timeout:g} s"
        self._reject(RequestTimeout(f"The client did not send the request's {what}."))

    def _path(self) -> bytes:
        return getattr(self, "url", b"")  # set by the parser's first callback of a request

    def _reject(self, error: GatewayError) -> None:
        """Answer `error` and close; a response under way is cut instead (nothing can follow it)."""
        self._disarm()
        cycle = self.cycle
        if self.transport.is_closing():
            return
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app sees a disconnect; what it writes is dropped
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        body = orjson.dumps(
            error.anthropic_body() if self._path().startswith(b"/v1/messages") else error.openai_body()
        )
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[error.status],
                    *(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers),
                    b"content-type: application/json\r\n",
                    b"content-length: %d\r\n" % len(body),
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()


def protocol_class(limits: ReadLimits) -> type[CoalescingHttpToolsProtocol]:
    """The protocol with `limits` (uvicorn instantiates the class it is given)."""
    return type("GuardedHttpToolsProtocol", (CoalescingHttpToolsProtocol,), {"limits": limits})


class RedactSignatures(logging.Filter):
    """The access log without the values of signed-link parameters (`sig`, `exp`...): a logged
    `?sig=` is a working download link for as long as it is valid."""

    _SIGNED = re.compile(
        r"([?&](?:sig|signature|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)=)[^&\s]*", re.I
    )

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "=" in args[2]:
            record.args = (*args[:2], redact_query(args[2]), *args[3:])
        return True


def redact_query(path: str) -> str:
    """`/v1/files/f/content?exp=1&sig=abc` -> `/v1/files/f/content?exp=1&sig=…`."""
    return RedactSignatures._SIGNED.sub(r"\1…", path)


DRAIN_SECONDS = 3.0  # after the interrupt: time for the terminal events and lease releases


class GracefulServer(uvicorn.Server):
    """uvicorn's server with a two-step shutdown (SIGTERM, SIGINT; Lambda sends SIGTERM too).

    1. Stop accepting, close idle connections, and let requests in flight finish for up to
       `grace` seconds.
    2. Past that, `drain()` ends the answers still streaming with the dialect's terminal error
       (and releases their leases); `DRAIN_SECONDS` later whatever remains is cancelled, as
       uvicorn does (a cancelled request still releases its lease on the way out).
    """

    def __init__(self, config: uvicorn.Config, *, grace: float, drain: Callable[[], int] | None) -> None:
        super().__init__(config)
        self.grace = grace
        self.drain = drain

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        try:
            async with asyncio.timeout(self.grace):
                await self._wait_tasks_to_complete()
        except TimeoutError:
            ended = self.drain() if self.drain is not None else 0
            log.warning("shutdown: %d stream(s) still running after %g s were ended", ended, self.grace)
        self.config.timeout_graceful_shutdown = int(DRAIN_SECONDS)
        await super().shutdown(sockets)


def serve(
    app: Any,
    *,
    host: str,
    port: int,
    log_level: str = "warning",
    limits: ReadLimits | None = None,
    grace: float = 10.0,
    drain: Callable[[], int] | None = None,
    **options: Any,
) -> None:
    """Run `app` (an ASGI app or an import string) until SIGTERM or SIGINT, then shut down
    gracefully (see `GracefulServer`)."""
    logging.getLogger("uvicorn.access").addFilter(RedactSignatures())
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=protocol_class(limits or ReadLimits()),  # SDK clients never offer h2c (docs/simulator.md)
        loop="uvloop" if sys.platform != "win32" else "auto",
        ws="none",  # no route takes a WebSocket: do not load a WebSocket library
        **options,
    )
    GracefulServer(config, grace=grace, drain=drain).run()


def main() -> None:
    """run.sh: the app named by ASGI_APP on 127.0.0.1:AWS_LWA_PORT, for the Lambda Web Adapter."""
    # Only the limits' own variables: the rest (and SSM's secrets) is read by the app on first use.
    fields = ("max_header_bytes", "header_timeout", "body_timeout", "shutdown_grace")
    names = {Settings.variable(f) for f in fields}
    settings = Settings.from_env({k: v for k, v in os.environ.items() if k in names})

    def drain() -> int:
        from functions import _wiring
        from functions._answer import interrupt_streams

        return interrupt_streams(_wiring._deps) if _wiring._deps is not None else 0

    serve(
        os.environ["ASGI_APP"],
        limits=ReadLimits.of(settings),
        grace=settings.shutdown_grace,
        drain=drain,
        host="127.0.0.1",
        port=int(os.environ.get("AWS_LWA_PORT", "8080")),
        log_level=os.environ.get("GROKGATE_LOG_LEVEL", "info").lower(),
        access_log=False,
        server_header=False,
        timeout_keep_alive=75,
    )


if __name__ == "__main__":
    main()
