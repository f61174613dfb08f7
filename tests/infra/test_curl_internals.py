"""The curl_cffi internals behind `infra/upstream/curl_internals.py`, and what they buy.

The first tests fail when a curl_cffi release changes a detail the adapter relies on: then re-read
that release's `aio.py` / `curl.py` and adapt the one module.
"""

from __future__ import annotations

import inspect

import curl_cffi
import curl_cffi.aio
from curl_cffi.curl import Curl

from infra.sim.script import expected_answer
from infra.sim.server import SimServer
from infra.upstream.curl_internals import WRITTEN_AGAINST, LazyTimers, set_header_lines
from infra.upstream.transport import CurlTransport
from tests.infra.test_upstream_transport import body, header_lines, make_settings
from tests.sim.helpers import CHAT


def test_the_curl_cffi_release_is_the_one_the_adapter_was_read_from() -> None:
    assert curl_cffi.__version__.startswith(WRITTEN_AGAINST)


def test_async_curl_arms_its_timer_through_loop_call_later_and_cancels_timer() -> None:
    source = inspect.getsource(curl_cffi.aio.timer_function)
    assert "async_curl._timer.cancel()" in source
    assert "async_curl._timer = async_curl.loop.call_later(" in source
    assert "self.loop" in inspect.getsource(curl_cffi.aio.AsyncCurl.__init__)


def test_async_curl_keeps_its_running_transfers_in_curl2future() -> None:
    source = inspect.getsource(curl_cffi.aio.AsyncCurl)
    assert "self._curl2future[curl] = future" in source  # add_handle
    assert "self._curl2future.pop(curl" in source  # remove_handle and a finished transfer


def test_async_curl_reads_through_process_data_as_lazy_timers_process_does() -> None:
    # LazyTimers swaps these registrations for its own `process`, which repeats this one.
    registering = inspect.getsource(curl_cffi.aio.socket_function)
    assert "loop.add_reader(sockfd, async_curl.process_data, sockfd, CURL_CSELECT_IN)" in registering
    assert "loop.add_writer(sockfd, async_curl.process_data, sockfd, CURL_CSELECT_OUT)" in registering
    assert "async_curl.process_data," in inspect.getsource(curl_cffi.aio.timer_function)
    reading = inspect.getsource(curl_cffi.aio.AsyncCurl.process_data)
    for step in (
        "self.socket_action(sockfd, ev_bitmask)",
        "lib.curl_multi_info_read(self._curlm, msg_in_queue)",
        "if curl_msg.msg == CURLMSG_DONE:",
        "curl = self._curl2curl[curl_msg.easy_handle]",
        "retcode = curl_msg.data.result",
        "callback_exception = curl._get_callback_exception()",
        "self.set_exception(curl, callback_exception)",
        "self.set_result(curl)",
        'self.set_exception(curl, curl._get_error(retcode, "perform"))',
    ):
        assert step in reading, step
    acting = inspect.getsource(curl_cffi.aio.AsyncCurl.socket_action)
    assert "lib.curl_multi_socket_action(" in acting and "self._check_error(errcode)" in acting


def test_curl_keeps_its_header_slist_on_the_handle() -> None:
    curl = Curl()
    try:
        set_header_lines(curl, [b"a: 1"])
        first = curl._headers
        set_header_lines(curl, [b"b: 2"])  # freed and replaced, not appended to
        assert curl._headers is not first
    finally:
        curl.close()


async def test_a_spaced_stream_keeps_one_curl_timer_instead_of_one_per_token(sim: SimServer) -> None:
    prompt = "[user]: slow #sim tokens=30 delay_ms=2"
    transport = CurlTransport(make_settings(sim.url), plain_http=True)
    try:
        response = await transport.post(sim.url + CHAT, header_lines(), body(prompt))
        reads = [chunk async for chunk in response]
        view = transport._multi.loop  # type: ignore[union-attr]
        assert isinstance(view, LazyTimers)
        text = b"".join(reads)
        assert text.count(b'"token"') >= 30 and expected_answer(prompt, "fast")[1].split()[0].encode() in text
        assert len(reads) >= 20  # the tokens did arrive one read each...
        assert view.timers_created < 10  # ...and curl's deadline moves did not each make a loop timer
        assert view.actions >= len(reads)  # every read went through the view's lean `process`
    finally:
        await transport.aclose()


async def test_a_pacing_window_joins_tokens_that_arrive_within_it(sim: SimServer) -> None:
    prompt = "[user]: slow #sim tokens=12 delay_ms=10"
    counts = {}
    for pacing in (0, 1000):
        transport = CurlTransport(make_settings(sim.url, stream_pacing_ms=pacing), plain_http=True)
        try:
            response = await transport.post(sim.url + CHAT, header_lines(), body(prompt))
            reads = [chunk async for chunk in response]
            assert b"".join(reads).count(b'"token"') >= 12
            counts[pacing] = len(reads)
        finally:
            await transport.aclose()
    # Unpaced, every token is its own read; a window longer than the whole answer leaves one or two.
    assert counts[0] >= 8 and counts[1000] <= 2
