"""Streaming POSTs for the chat hot path, over pooled curl handles configured once.

`AsyncSession.request(stream=True)` re-applies some twenty options per call, parses every header
and cookie into objects and hands the body over through an asyncio.Queue: on the chat path that
was most of the gateway's CPU. Here a handle is configured once (impersonation, proxy, timeouts,
CA bundle, callbacks) and a request sets only its URL, body and header lines. The rare calls
(uploads, downloads, Imagine, rate limits) stay on `AsyncSession`: they are not hot.

One `AsyncCurl` multi and one handle pool per event loop: curl's sockets and timers are registered
with the loop that was running when the multi was made, so a new loop (a new Lambda loop, a test)
starts afresh. Connections live in the multi and are shared by its handles.

Body chunks are kept as curl delivers them and handed to the reader joined, once per wake-up;
or, when the reader installed a sink (`set_sink`) and is parked, handed to the sink at the end
of the socket action that read them, without waking the reader (the chat service's push path).
Past `max_buffered` unread bytes the transfer is paused (curl holds the data back and the socket
is no longer read) until the reader catches up. `aclose()`, or cancelling a task that waits for
headers or data, removes the handle from the multi: curl closes the connection (HTTP/1.1) or
resets the stream (HTTP/2), and the handle, out of the multi, goes back to the pool.

With a pacing window (`GROKGATE_STREAM_PACING_MS`, default 0: off) a read that finds data waits
until the window since its first chunk has passed, so tokens written a few milliseconds apart are
decoded, transcoded and sent as one batch: fewer wake-ups of everything downstream, for up to the
window's latency per token.

Besides curl_cffi's public API, two private details are relied on, both in `curl_internals`
(the header slist on `Curl._headers`; the multi timer `AsyncCurl` arms, kept lazy there).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from curl_cffi import CurlError
from curl_cffi.aio import AsyncCurl
from curl_cffi.const import CurlECode, CurlHttpVersion, CurlOpt
from curl_cffi.curl import CURLPAUSE_CONT, DEFAULT_CACERT, Curl
from curl_cffi.requests.impersonate import resolve_latest_browser_type

from core.protocol.classify import UpstreamFailure, transport_failure
from core.settings import Settings
from infra.upstream.curl_handle import MAX_BUFFERED, NO_VIEW, Handle, loop_of
from infra.upstream.curl_internals import LazyTimers, lazy_timers, set_header_lines, transfers_in

PACED_BYTES = 1 << 16  # a paced read takes what it has past this much, window or not
# What AsyncSession asks curl to decode by default; the header line sent is the caller's own.
ACCEPT_ENCODING = b"gzip, deflate, br"


def translate_curl_error(exc: BaseException, what: str) -> UpstreamFailure:
    """A curl_cffi error (or a callback's exception) as the transient or timeout failure it is."""
    # curl messages may carry the URL, never headers: safe to keep as the reason.
    text = str(exc).split(" See https://curl.se", 1)[0][:200]
    timed_out = isinstance(exc, CurlError) and exc.code == CurlECode.OPERATION_TIMEDOUT
    return transport_failure(f"{what}: {type(exc).__name__}: {text}", timeout=timed_out)


def _free_multi_of_closed_loop(multi: AsyncCurl, loop: asyncio.AbstractEventLoop) -> bool:
    """Free a multi left behind by a closed loop (a cron or worker run under `asyncio.run`),
    so its cached connections do not pile up, one per run. Its timers and readers belong to
    that loop; a loop still open elsewhere keeps its multi (as AsyncSession would). True if freed."""
    if not loop.is_closed():
        return False
    # `AsyncCurl.close()` awaits only its timeout-checker task, which `asyncio.run` cancelled
    # with the loop: driven by hand it then completes in one step, without a running loop.
    closing = multi.close()
    try:
        closing.send(None)
    except StopIteration:
        return True
    except RuntimeError:  # the checker was still pending on the dead loop: leave it
        return False
    closing.close()
    return False


class StreamedResponse:
    """An answer being read: `status`, `headers` (only `KEPT_HEADERS`), async iteration of body
    bytes (what arrived since the last read, joined), and `aclose()`, which aborts the transfer
    and is idempotent. Iterating raises `UpstreamFailure` on a transport failure or once the
    total timeout has passed."""

    __slots__ = ("_deadline", "_failure", "_handle", "_pacing", "_transport", "headers", "status")

    def __init__(self, transport: CurlTransport, handle: Handle, deadline: float) -> None:
        self._transport = transport
        self._handle: Handle | None = handle
        self._deadline = deadline
        self._pacing = transport.pacing
        self._failure: UpstreamFailure | None = None
        self.status = 0
        self.headers: dict[str, str] = {}

    async def _wait_for_headers(self) -> None:
        handle = self._handle
        assert handle is not None and handle.finished is not None
        while not handle.headers_complete:
            if handle.finished.done():
                error = self._end()
                if error is not None:
                    raise translate_curl_error(error, "upstream chat request failed")
                if not handle.headers_complete:
                    raise transport_failure("upstream chat request ended without a response")
                break
            await self._wait(handle)
            if self._handle is None:  # aborted while waiting (silence, the transport closed)
                failure, self._failure = self._failure, None
                raise failure or transport_failure("upstream chat request was aborted")
        self.status = handle.status
        self.headers = handle.headers

    def set_sink(self, sink: Callable[[bytes], bool] | None) -> bool:
        """While the reader is parked with nothing unread, hand the body bytes to `sink` instead
        of waking it: called from the loop's callback that read them, once per curl socket action
        with all that action read (None: stop). `sink(data)` returns True when it dealt with the
        bytes; False when it took them but the reader must run (its next read then returns what
        arrived since, possibly b""). It must not raise. Refused (False, nothing set) with a
        pacing window, which joins reads the other way."""
        handle = self._handle
        if handle is None or (sink is not None and self._pacing):
            return False
        handle.sink = sink
        return True

    def __aiter__(self) -> StreamedResponse:
        return self

    async def __anext__(self) -> bytes:
        while True:
            handle = self._handle
            if handle is None:
                if self._failure is not None:
                    failure, self._failure = self._failure, None
                    raise failure
                raise StopAsyncIteration
            assert handle.finished is not None
            if handle.chunks:
                now = time.monotonic()
                if now > self._deadline:
                    self._abort()
                    raise transport_failure("upstream stream exceeded the total timeout", timeout=True)
                due = handle.first_at + self._pacing
                if now < due and not handle.finished.done() and handle.buffered < PACED_BYTES:
                    await self._hold(handle, due - now)
                    continue
                return self._take(handle)
            if handle.finished.done():
                error = self._end()
                if error is not None:
                    raise translate_curl_error(error, "upstream stream broke off")
                raise StopAsyncIteration
            await self._wait(handle)

    def _take(self, handle: Handle) -> bytes:
        chunks = handle.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        handle.buffered = 0
        if handle.paused:
            handle.paused = False
            try:
                handle.curl.pause(CURLPAUSE_CONT)  # may deliver the held-back chunk right away
            except CurlError as exc:
                self._abort(translate_curl_error(exc, "upstream stream could not resume"))
        return data

    async def _hold(self, handle: Handle, delay: float) -> None:
        """Wait out the pacing window (or the transfer's end), letting chunks pile up."""
        assert handle.loop is not None
        timer = handle.loop.call_later(delay, handle.wake)
        handle.holding = True
        try:
            await self._wait(handle)
        finally:
            handle.holding = False
            timer.cancel()

    async def _wait(self, handle: Handle) -> None:
        assert handle.loop is not None
        handle.waiter = waiter = handle.loop.create_future()
        try:
            await waiter
        except asyncio.CancelledError:
            # Read again after this, the stream fails rather than seeming to have ended.
            self._abort(transport_failure("upstream read was cancelled"))
            raise
        finally:
            handle.waiter = None

    def _end(self) -> BaseException | None:
        """The transfer is over (curl already took the handle out of the multi): give it back
        and return its error, if any."""
        handle, self._handle = self._handle, None
        assert handle is not None and handle.finished is not None
        finished = handle.finished
        finished.remove_done_callback(handle.wake)  # not to wake the handle's next reader
        error = None if finished.cancelled() else finished.exception()
        # A callback's exception stays recorded on curl_cffi's callback context: retire the handle.
        self._transport._release(self, handle, reusable=error is None or isinstance(error, CurlError))
        return error

    def _abort(self, failure: UpstreamFailure | None = None) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        self._failure = failure
        finished = handle.finished
        assert finished is not None and handle.multi is not None
        finished.remove_done_callback(handle.wake)
        reusable = True
        if not finished.done():
            try:
                handle.multi.remove_handle(handle.curl)  # curl drops the unfinished transfer
            except CurlError:
                reusable = False
        self._transport._release(self, handle, reusable=reusable)

    @property
    def paused(self) -> bool:
        """Whether curl holds the transfer because the reader is behind (`max_buffered` unread)."""
        return self._handle is not None and self._handle.paused

    async def aclose(self) -> None:
        handle = self._handle
        if handle is None:
            return
        assert handle.finished is not None
        if handle.finished.done():
            self._end()
        else:
            self._abort()


class CurlTransport:
    """Streaming POSTs over one `AsyncCurl` multi per event loop and a pool of ready handles.

    Args:
        settings: impersonation target, proxy and the connect, read and total timeouts.
        plain_http: force HTTP/1.1; plain-http servers (the simulator) can lose the body on the
            `Upgrade: h2c` offer that Chrome impersonation makes (docs/simulator.md).
        max_idle: idle handles kept for reuse; more are closed when they come back.
        max_buffered: unread body bytes after which a transfer is paused.
        impersonate: the curl_cffi target (default: the settings'); one transport per target,
            since a handle's TLS fingerprint is set once.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        plain_http: bool = False,
        max_idle: int = 256,
        max_buffered: int = MAX_BUFFERED,
        impersonate: str | None = None,
    ) -> None:
        self.settings = settings
        self.plain_http = plain_http
        self.max_idle = max_idle
        self.max_buffered = max_buffered
        self.handles_created = 0
        self.multis_freed = 0  # multis of closed loops freed (a cron or worker run per loop)
        self.pacing = settings.stream_pacing_ms / 1000
        self._target = resolve_latest_browser_type(impersonate or settings.impersonate)
        self._silence = settings.read_timeout
        self._every = min(1.0, settings.read_timeout / 4)  # how often silence is checked
        self._checking: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._multi: AsyncCurl | None = None
        self._idle: list[Handle] = []
        self._open: set[StreamedResponse] = set()
        self._ready: list[Handle] = []
        self._view: LazyTimers = NO_VIEW

    @property
    def idle_handles(self) -> int:
        return len(self._idle)

    @property
    def open_responses(self) -> int:
        return len(self._open)

    @property
    def transfers_in_flight(self) -> int:
        """Transfers curl's multi still runs: 0 once every response finished or was closed."""
        return 0 if self._multi is None else transfers_in(self._multi)

    def _multi_for_loop(self) -> AsyncCurl:
        loop = asyncio.get_running_loop()
        if self._multi is None or self._loop is not loop:
            self._close_idle()
            if self._multi is not None and self._loop is not None:
                self.multis_freed += _free_multi_of_closed_loop(self._multi, self._loop)
            self._multi = AsyncCurl(loop=loop)
            self._view = lazy_timers(self._multi)
            self._view.after = self._drain
            self._loop = loop
            self._checking = None  # the old loop's timer went with it
        return self._multi

    def _new_handle(self) -> Handle:
        settings = self.settings
        curl = Curl()
        handle = Handle(curl, self.max_buffered, self._ready)
        try:
            # Before impersonating, like AsyncSession: the impersonation reads the HTTP version.
            if self.plain_http:
                curl.setopt(CurlOpt.HTTP_VERSION, CurlHttpVersion.V1_1)
            curl.setopt(CurlOpt.ACCEPT_ENCODING, ACCEPT_ENCODING)
            if curl.impersonate(self._target, default_headers=False) != 0:
                raise ValueError(f"curl cannot impersonate {settings.impersonate!r}")
            curl.setopt(CurlOpt.POST, 1)
            curl.setopt(CurlOpt.NOSIGNAL, 1)
            curl.setopt(CurlOpt.FOLLOWLOCATION, 0)
            curl.setopt(CurlOpt.CONNECTTIMEOUT_MS, int(settings.connect_timeout * 1000))
            # No curl low-speed limit for the read timeout: with one, curl moves its speed-check
            # deadline on every read, a timer callback per token. `_check_silence` does it.
            # An empty PROXY and NOPROXY: no proxy from the environment (trust_env=False).
            curl.setopt(CurlOpt.NOPROXY, "")
            self._set_proxy(handle, settings.proxy_url)
            curl.setopt(CurlOpt.CAINFO, DEFAULT_CACERT)
            curl.setopt(CurlOpt.PROXY_CAINFO, DEFAULT_CACERT)
            curl.setopt(CurlOpt.WRITEFUNCTION, handle.on_body)
            curl.setopt(CurlOpt.HEADERFUNCTION, handle.on_header)
        except BaseException:
            curl.close()
            raise
        self.handles_created += 1
        return handle

    def _set_proxy(self, handle: Handle, proxy: str | None) -> None:
        curl = handle.curl
        curl.setopt(CurlOpt.PROXY, proxy or "")
        if proxy:
            curl.setopt(CurlOpt.PROXY_CREDENTIAL_NO_REUSE, 1)
            curl.setopt(CurlOpt.SUPPRESS_CONNECT_HEADERS, 1)  # the header callback sees the origin's only
        tunnel = bool(proxy) and not self.plain_http and not str(proxy).startswith("socks")
        curl.setopt(CurlOpt.HTTPPROXYTUNNEL, 1 if tunnel else 0)
        handle.proxy = proxy

    async def post(
        self, url: str, header_lines: Sequence[bytes], body: bytes, *, proxy: str | bool | None = False
    ) -> StreamedResponse:
        """POST `body` with exactly `header_lines` (`b"name: value"`) and return once the
        response headers are in. `proxy` is the egress for this request (False: the settings').
        Transport failures raise `UpstreamFailure`."""
        multi = self._multi_for_loop()
        deadline = time.monotonic() + self.settings.total_timeout
        handle = self._idle.pop() if self._idle else self._new_handle()
        handle.reset()
        curl = handle.curl
        try:
            if handle.url != url:  # the chat URL is set once per handle, not per request
                curl.setopt(CurlOpt.URL, url.encode())
                handle.url = url
            if (
                proxy is not False and handle.proxy != proxy
            ):  # likewise the egress (a pinned account keeps it)
                self._set_proxy(handle, proxy or None)
            curl.setopt(CurlOpt.POSTFIELDS, body)  # curl_cffi keeps `body` alive for curl
            curl.setopt(CurlOpt.POSTFIELDSIZE, len(body))
            set_header_lines(curl, header_lines)
            handle.deadline = deadline
            handle.finished = multi.add_handle(curl)
        except CurlError as exc:
            self._release(None, handle, reusable=False)
            raise translate_curl_error(exc, "upstream chat request failed") from None
        handle.multi = multi
        handle.loop = self._loop
        handle.view = self._view
        handle.quiet_since = time.monotonic()
        handle.heard = False
        if self._checking is None:
            self._checking = loop_of(handle).call_later(self._every, self._check_silence)
        handle.finished.add_done_callback(handle.wake)
        response = StreamedResponse(self, handle, deadline)
        self._open.add(response)
        await response._wait_for_headers()
        return response

    def _check_silence(self) -> None:
        """The read timeout: a transfer that got no byte (headers or body) for `read_timeout`
        seconds is abandoned, its reader woken with a timeout failure. One timer per transport,
        not one per read; runs while responses are open."""
        self._checking = None
        now = time.monotonic()
        for response in list(self._open):
            handle = response._handle
            if handle is None:
                continue
            if handle.heard:
                handle.heard = False
                handle.quiet_since = now
            elif now - handle.quiet_since >= self._silence:
                handle.wake()
                response._abort(
                    transport_failure(f"upstream stream was silent for {self._silence:g} s", timeout=True)
                )
        if self._open and self._loop is not None and not self._loop.is_closed():
            self._checking = self._loop.call_later(self._every, self._check_silence)

    def _drain(self) -> None:
        """After a socket action: hand each parked reader's new bytes to its sink, in one piece;
        wake the readers that cannot take them that way."""
        ready = self._ready
        if not ready:
            return
        handles = ready[:]
        ready.clear()
        for handle in handles:
            handle.queued = False
            chunks = handle.chunks
            if not chunks:
                continue  # the reader took them meanwhile
            sink = handle.sink
            if sink is None or handle.waiter is None or handle.paused or time.monotonic() > handle.deadline:
                handle.wake()  # the reader deals with it (the deadline, a paused transfer)
                continue
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            handle.buffered = 0
            if not sink(data):
                chunks.append(b"")  # taken, but the reader must run: its next read is empty
                handle.wake()

    def _release(self, response: StreamedResponse | None, handle: Handle, *, reusable: bool) -> None:
        if response is not None:
            self._open.discard(response)
        handle.waiter = None
        handle.sink = None
        handle.queued = False
        if reusable and handle.multi is self._multi and len(self._idle) < self.max_idle:
            self._idle.append(handle)
        else:
            handle.curl.close()

    def _close_idle(self) -> None:
        for handle in self._idle:
            handle.curl.close()
        self._idle.clear()

    async def aclose(self) -> None:
        """Abort open transfers (their readers get a transport failure), close every handle and,
        on its own loop, the multi."""
        for response in list(self._open):
            if response._handle is not None:
                response._handle.wake()  # a parked reader gets the failure, not a hang
            response._abort(transport_failure("upstream transport closed"))
        self._open.clear()
        self._close_idle()
        multi, self._multi = self._multi, None
        if multi is None or self._loop is None:
            return
        if self._loop is asyncio.get_running_loop():
            await multi.close()
        else:
            _free_multi_of_closed_loop(multi, self._loop)
