"""The curl_cffi internals the chat transport relies on, in one place (written against 0.17).

Three private details are used, and `tests/infra/test_curl_internals.py` fails when a curl_cffi
release changes one:

* the header slist curl_cffi keeps on `Curl._headers` (freed with `_wrapper.lib`), which its
  `setopt(HTTPHEADER)` appends to instead of replacing (`set_header_lines`);
* how `AsyncCurl` arms curl's multi timer: its C timer callback cancels `AsyncCurl._timer` and
  stores `AsyncCurl.loop.call_later(...)` in its place (`lazy_timers`);
* the map of running transfers `AsyncCurl._curl2future`, which `remove_handle` and a finished
  transfer leave (`transfers_in`: the transport's count of transfers still in flight).

Why the timer matters: with a low-speed limit set, curl pushes its speed-check deadline one
second ahead on every read, so on a stream whose tokens arrive one write each the stock
callback cancels one loop timer and creates another per token. `LazyTimers` keeps one timer
armed for the earliest deadline asked: a later deadline just re-arms the callback, and the
timer, when it fires early, runs curl's timeout action, which does nothing but ask again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from curl_cffi._wrapper import ffi, lib
from curl_cffi.aio import AsyncCurl
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
    multi, moved only when curl asks for an earlier deadline; anything else is the loop's.

    The handle it returns is itself: `cancel()` disarms (the real timer may still fire, and
    then does nothing), a new `call_later` re-arms.
    """

    __slots__ = ("_armed", "_loop", "_real", "_when", "timers_created")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._real: asyncio.TimerHandle | None = None
        self._when = 0.0
        self._armed: tuple[Callable[..., object], tuple[Any, ...]] | None = None
        self.timers_created = 0  # real loop timers made (the tests count them)

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> LazyTimers:
        when = self._loop.time() + delay
        self._armed = (callback, args)
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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


def lazy_timers(multi: AsyncCurl) -> LazyTimers:
    """Give `multi` the lazy view of its loop (call right after creating it, before any handle)."""
    view = LazyTimers(multi.loop)
    multi.loop = view  # type: ignore[assignment]
    return view
