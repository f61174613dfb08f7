"""Run the simulator: `SimServer` in a background thread for tests and benchmarks, `run()` in the
foreground for `grokgate sim` and `python -m infra.sim`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import threading
import time
from collections.abc import Sequence
from types import TracebackType

import uvicorn

from infra.sim.accounts import Account, Accounts
from infra.sim.app import build_app
from infra.sim.assets import AssetStore
from infra.sim.requestlog import RequestLog
from infra.sim.state import SimConfig, SimState
from infra.sim.wire import SimDrop


class _HideExpected(logging.Filter):
    """Drop two expected uvicorn messages: the exception that cuts a stream on purpose
    (midstream_drop), and the warning about curl_cffi's h2c upgrade offer, which h11 ignores."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, SimDrop) and record.getMessage() != "Unsupported upgrade request."


logging.getLogger("uvicorn.error").addFilter(_HideExpected())


def _config(app: object, log_level: str) -> uvicorn.Config:
    # h11, not httptools: curl_cffi's Chrome impersonation offers `Upgrade: h2c` over plain http and
    # httptools then drops the request body (docs/simulator.md). websockets-sansio avoids the deprecated
    # legacy websockets server, whose DeprecationWarning is an error under the test suite's filters.
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        http="h11",
        ws="websockets-sansio",
        lifespan="off",
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=1,  # nothing to drain: a paced answer on a dead socket just ends
        timeout_keep_alive=30,
        ws_ping_interval=None,
        server_header=False,
    )


class SimServer:
    """A Grok web simulator on a real loopback socket.

    `assets_url` is the base used in absolute asset URLs (defaults to the server's own URL, since
    it also serves the assets host's paths). `accept_any` makes every `sso` token a valid account.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        assets_url: str | None = None,
        accept_any: bool = False,
        config: SimConfig | None = None,
        log_level: str = "warning",
    ) -> None:
        self.host = host
        # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto says
        # TCP, and without it Nagle + delayed ACK add 40 ms to every keep-alive request.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.state = SimState(assets_url or self.url, accept_any=accept_any, config=config)
        self._server = uvicorn.Server(_config(build_app(self.state), log_level))
        self._thread: threading.Thread | None = None

    # the state tests reach for -------------------------------------------------------------------
    @property
    def accounts(self) -> Accounts:
        return self.state.accounts

    @property
    def log(self) -> RequestLog:
        return self.state.log

    @property
    def assets(self) -> AssetStore:
        return self.state.assets

    @property
    def config(self) -> SimConfig:
        return self.state.config

    @property
    def assets_url(self) -> str:
        return self.state.assets_url

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[4:]

    def account(self, token: str) -> Account:
        """The account for `token` (registers `sim-` and accept-any tokens on first use)."""
        account = self.accounts.get(token)
        if account is None:
            raise KeyError("token is neither registered nor in the sim- scheme")
        return account

    def reset(self) -> None:
        """Forget the request log, accounts and their knobs and quota, assets, and config changes."""
        self.state.reset()

    # lifecycle -----------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> SimServer:
        """Serve on a background thread with its own event loop; returns once the socket accepts."""
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="grok-sim", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("simulator failed to start")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._sock.close()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run(
    host: str = "127.0.0.1",
    port: int = 8790,
    *,
    assets_url: str | None = None,
    accept_any: bool = False,
    defences: bool = False,
) -> None:
    """Serve in the foreground until interrupted (what `grokgate sim --port N` calls)."""
    config = SimConfig(statsig="signed", challenge_all=True) if defences else None
    sim = SimServer(host, port, assets_url=assets_url, accept_any=accept_any, config=config, log_level="info")
    print(
        f"grok simulator on {sim.url}  (assets: {sim.assets_url}; FlareSolverr: POST {sim.url}/v1)",
        flush=True,
    )
    print(
        "tokens: any sim-... token works, e.g. sim-super-alice, sim-heavy-bob, sim-basic-expired-x",
        flush=True,
    )
    asyncio.run(sim._server.serve(sockets=[sim._sock]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.sim", description="Run the Grok web simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--assets-url", default=None, help="base for absolute asset URLs (default: own URL)")
    parser.add_argument("--accept-any", action="store_true", help="accept every sso token as a super account")
    parser.add_argument(
        "--defences",
        action="store_true",
        help="demand what grok.com demands: a signed x-statsig-id and a cf_clearance from POST /v1",
    )
    args = parser.parse_args(argv)
    try:
        run(
            args.host,
            args.port,
            assets_url=args.assets_url,
            accept_any=args.accept_any,
            defences=args.defences,
        )
    except KeyboardInterrupt:
        pass
    return 0
