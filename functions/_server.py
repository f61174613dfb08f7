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
import os
import sys
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport whose writes within one loop iteration reach the socket as one write.

    Everything but writing and closing is the wrapped transport's. Closing sends what is
    pending first; aborting drops it, as an abort drops the socket's own buffer.
    """

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
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


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
        super().connection_made(coalescing)  # type: ignore[arg-type]


def serve(app: Any, *, host: str, port: int, log_level: str = "warning", **options: Any) -> None:
    """Run `app` (an ASGI app or an import string) until interrupted."""
    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=CoalescingHttpToolsProtocol,  # SDK clients never offer h2c (platforms.md §10)
        loop="uvloop" if sys.platform != "win32" else "auto",
        ws="none",  # no route takes a WebSocket: do not load a WebSocket library
        **options,
    )


def main() -> None:
    """run.sh: the app named by ASGI_APP on 127.0.0.1:AWS_LWA_PORT, for the Lambda Web Adapter."""
    serve(
        os.environ["ASGI_APP"],
        host="127.0.0.1",
        port=int(os.environ.get("AWS_LWA_PORT", "8080")),
        log_level=os.environ.get("GROKGATE_LOG_LEVEL", "info").lower(),
        access_log=False,
        server_header=False,
        timeout_keep_alive=75,
    )


if __name__ == "__main__":
    main()
