"""The curl_cffi internals the chat transport relies on, in one place (written against 0.17).

Four private details are used, and `tests/infra/test_curl_internals.py` fails when a curl_cffi
release changes one:

* the header slist curl_cffi keeps on `Curl._headers` (freed with `_wrapper.lib`), which its
  `setopt(HTTPHEADER)` appends to instead of replacing (`set_header_lines`);
* how `AsyncCurl` arms curl's multi timer: its C timer callback cancels `AsyncCurl._timer` and
  stores `AsyncCurl.loop.call_later(...)` in its place (`lazy_timers`);
* the map of running transfers `AsyncCurl._curl2future`, which `remove_handle` and a finished
  transfer leave (`transfers_in`: the transport's count of transfers still in flight);
* how it reads: its socket callback registers `AsyncCurl.process_data` with `loop.add_reader` /
  `add_writer`, and `process_data` runs one socket action, then settles each finished transfer's
  future from `curl_multi_info_read` (`_curl2curl`, the callback exception, `_get_error`), which
  `LazyTimers.process` does the same way without its per-call allocations.

Why the timer matters: curl moves some deadlines on every read (with a low-speed limit, which
the transport no longer sets, its speed check one second ahead), and the stock callback answers
each move by cancelling one loop timer and creating another. `LazyTimers` keeps one timer
armed for the earliest deadline asked: a later deadline just re-arms the callback, and the
timer, when it fires early, runs curl's timeout action, which does nothing but ask again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from curl_cffi._wrapper import ffi, lib
from curl_cffi.aio import CURLMSG_DONE, AsyncCurl
from curl_cffi.const import CurlOpt
from curl_cffi.curl import Curl

WRITTEN_AGAINST = "0.17."  # the curl_cffi release line these details were read from


def set_header_lines(curl: Curl, lines: Sequence[bytes]) -> None:
    """Replace the handle's request header lines (curl_cffi's setopt appends: free first)."""
    if curl._headers != ffi.NULL:
        lib.curl_slist_free_all(curl._headers)
        curl._headers = ffi.NULL
    curl.setopt(CurlOpt.HTTPHEADER, lines)


def transfers_in(multi: AsyncCurl) -> int:
    """How many transfers the multi still runs."""
    return len(multi._curl2future)


class LazyTimers:
    """The loop as `AsyncCurl` sees it: its own `call_later` keeps one real timer for curl's
    multi, moved only when curl asks for an earlier deadline; its `add_reader`/`add_writer` and
    timers run `process` instead of curl_cffi's `process_data`; anything else is the loop's.

    The handle `call_later` returns is itself: `cancel()` disarms (the real timer may still
    fire, and then does nothing), a new `call_later` re-arms.

    `process` is `process_data` without its per-call allocations (two `ffi.new` and the error
    check's calls), with `acting` set while curl runs its socket action and `after()` called
    once that action and the finished transfers are dealt with: the transport hands what one
    action read to its readers in one go, however many write callbacks curl made.
    """

    __slots__ = (
        "_armed",
        "_loop",
        "_multi",
        "_queued",
        "_real",
        "_running",
        "_when",
        "acting",
        "actions",
        "after",
        "timers_created",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, multi: AsyncCurl | None = None) -> None:
        self._loop = loop
        self._multi = multi
        self._real: asyncio.TimerHandle | None = None
        self._when = 0.0
        self._armed: tuple[Callable[..., object], tuple[Any, ...]] | None = None
        self._running = ffi.new("int *")
        self._queued = ffi.new("int *")
        self.acting = False
        self.after: Callable[[], None] | None = None
        self.timers_created = 0  # real loop timers made (the tests count them)
        self.actions = 0  # socket actions run by `process` (likewise)

    def _ours(self, callback: Callable[..., object]) -> Callable[..., object]:
        multi = self._multi
        return self.process if multi is not None and callback == multi.process_data else callback

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> LazyTimers:
        when = self._loop.time() + delay
        self._armed = (self._ours(callback), args)
        real = self._real
        if real is not None:
            if self._when <= when:
                return self  # the armed timer fires first; curl then asks again
            real.cancel()
        self._when = when
        self._real = self._loop.call_at(when, self._fire)
        self.timers_created += 1
        return self

    def cancel(self) -> None:
        self._armed = None

    def _fire(self) -> None:
        self._real = None
        armed, self._armed = self._armed, None
        if armed is not None:
            armed[0](*armed[1])

    def add_reader(self, fd: int, callback: Callable[..., object], *args: Any) -> None:
        self._loop.add_reader(fd, self._ours(callback), *args)

    def add_writer(self, fd: int, callback: Callable[..., object], *args: Any) -> None:
        self._loop.add_writer(fd, self._ours(callback), *args)

    def process(self, sockfd: int, mask: int) -> None:
        """curl_cffi's `process_data`: one socket action, then the finished transfers' futures."""
        multi = self._multi
        assert multi is not None
        curlm = multi._curlm
        if not curlm:
            return  # closed (curl_cffi warns here; a late timer is no news)
        self.acting = True
        self.actions += 1
        try:
            code = lib.curl_multi_socket_action(curlm, sockfd, mask, self._running)
        finally:
            self.acting = False
        if code != 0:
            multi._check_error(code)
        while True:
            message = lib.curl_multi_info_read(curlm, self._queued)
            if message == ffi.NULL:
                break
            if message.msg == CURLMSG_DONE:
                curl = multi._curl2curl[message.easy_handle]
                result = message.data.result
                raised = curl._get_callback_exception()
                if raised is not None:
                    multi.set_exception(curl, raised)
                elif result == 0:
                    multi.set_result(curl)
                else:
                    multi.set_exception(curl, curl._get_error(result, "perform"))
        after = self.after
        if after is not None:
            after()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


def lazy_timers(multi: AsyncCurl) -> LazyTimers:
    """Give `multi` the lazy view of its loop (call right after creating it, before any handle)."""
    view = LazyTimers(multi.loop, multi)
    multi.loop = view  # type: ignore[assignment]
    return view
