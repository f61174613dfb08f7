"""The chat use case: lease an account, call the upstream, hold, retry, stream, release.

Dialect-agnostic: `ChatService.open(request)` returns a `ChatStream` of `core.events` batches
(one batch per upstream read); OpenAI chat, Responses and Messages each put their accumulator on
top. The timeline of one request:

    open()                                      ChatStream (iterated by the route)
    ├─ fetch client URLs (no cookie, SSRF guard)
    ├─ attempt 1..1+retry_budget (the `Leasing` loop every leased call shares):
    │   lease ── upload attachments ── POST E1
    │   hold: read until the first meaningful event
    │     early failure (expired, 429, challenge, in-band, empty)
    │       -> release(outcome, refund) and try another account, or raise its error
    └─ return, holding the first batch          yield batches ... Finish -> release(SUCCESS)
                                                failure -> Fault, release(outcome)
                                                client gone -> finally: abort upstream, release(CANCELLED)

Nothing reaches the client before the hold ends, so until then every failure is still a proper
HTTP error; after it, failures are `Fault` events and the stream still ends properly.
`core.services.leasing` says which failed accounts are released at once and which are held.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from core.accounts import Lease, Outcome, OutcomeKind
from core.errors import GatewayError, InvalidRequest
from core.events import Event, Fault, Finish, ImageOut, ReasoningDelta, TextDelta, Usage
from core.ports import AccountStore, Upstream, UrlFetcher
from core.protocol.classify import UpstreamFailure, transport_failure
from core.protocol.gateway_frames import ChatDecoder, decoder_for
from core.protocol.payload import chat_body, check_message_size
from core.services.leasing import Leasing
from core.settings import Settings
from core.transcode.limits import Limits
from core.transcode.normalize import Attachment, ChatRequest, check_attachment, check_attachments
from core.transcode.tools import ToolFilter
from core.transcode.usage import estimate_usage

log = logging.getLogger("grokgate.chat")
_PUSHED = (TextDelta, ReasoningDelta)  # what push_to hands over; the rest goes through the iteration


class ChatService:
    """Args:
    settings: retry budget, lease ttl, cooldown, assets URL, image format.
    store: the account pool.
    upstream: Grok's web app (the curl_cffi adapter, or the simulator behind it).
    fetcher: client-supplied URL fetcher; None refuses http(s) attachments.
    clock: seconds since the epoch.
    """

    def __init__(
        self,
        settings: Settings,
        store: AccountStore,
        upstream: Upstream,
        *,
        fetcher: UrlFetcher | None = None,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.store = store
        self.upstream = upstream
        self.fetcher = fetcher
        self.active: set[ChatStream] = set()  # the answers streaming now (graceful shutdown)
        self.clock = clock
        self.leasing = Leasing(settings, store, clock, upstream=upstream)

    async def open(self, request: ChatRequest) -> ChatStream:
        """Start the answer; raises a `GatewayError` if it cannot start on any account."""
        check_message_size(request.message)  # the client's fault: before any account is tried
        files = await self._resolve(request.attachments)
        waited = 0.0  # seconds spent on the upstream (uploads, the call, the hold), every attempt

        async def attempt(lease: Lease) -> ChatStream:
            nonlocal waited
            began = time.perf_counter()
            try:
                stream = await self._attempt(request, files, lease)
            finally:
                waited += time.perf_counter() - began
            stream.upstream_wait = waited
            return stream

        return await self.leasing.run(request.model, attempt, keep=True)

    async def _attempt(self, request: ChatRequest, files: list[Attachment], lease: Lease) -> ChatStream:
        file_ids = [await self.upstream.upload(lease.token, f.name, f.mime, f.data or b"") for f in files]
        no_search = self.settings.web_search == "tool" and not request.web_search
        body = chat_body(request.message, request.model.mode, file_ids=file_ids, disable_search=no_search)
        upstream = await self.upstream.chat(lease.token, body)
        decoder = decoder_for(upstream, self.settings.assets_url)
        chunks = upstream.__aiter__()
        first: list[Event] = []
        try:
            while not first:
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    first = decoder.flush()
                    break
                first = decoder.feed(chunk)
            if first and isinstance(first[0], Fault) and first[0].failure is not None:
                raise first[0].failure
        except BaseException:
            await upstream.aclose()
            raise
        return ChatStream(self, request, lease, upstream, chunks, decoder, first, len(files))

    async def _resolve(self, attachments: tuple[Attachment, ...]) -> list[Attachment]:
        """Fetch URL attachments (without any account cookie) and check every file."""
        files: list[Attachment] = []
        for att in attachments:
            if att.url is not None:
                if self.fetcher is None:
                    raise InvalidRequest(f"'{att.param}': URL inputs are disabled.", param=att.param)
                fetched = await self.fetcher.fetch(att.url, param=att.param)
                att = Attachment(att.name, att.mime or fetched.mime, data=fetched.data, param=att.param)
            files.append(check_attachment(att))
        check_attachments(files)
        return files

    def interrupt_all(self, error: GatewayError) -> int:
        """End every answer streaming now with `error` as its terminal event; how many."""
        streams = list(self.active)
        for stream in streams:
            stream.interrupt(error)
        return len(streams)


class BatchStream:
    """Batches of events, read with `async for batch in stream`; always `aclose()`. Subclasses
    set `_gen`, the generator behind the iteration, and say what closing releases."""

    _gen: AsyncGenerator[list[Event], None]

    def __aiter__(self) -> AsyncIterator[list[Event]]:
        return self._gen

    async def aclose(self) -> None:
        await self._gen.aclose()

    async def collect(self) -> list[Event]:
        """Drain the stream (non-streaming calls)."""
        events: list[Event] = []
        try:
            async for batch in self:
                events.extend(batch)
        finally:
            await self.aclose()
        return events


class ChatStream(BatchStream):
    """The started answer: `async for batch in stream` yields lists of events; always `aclose()`.

    The first batch is the one the hold read. Usage comes just before `Finish`; `Finish` or
    `Fault` is always the last event. Closing early (client gone) aborts the upstream read and
    releases the lease as CANCELLED.
    """

    def __init__(
        self,
        service: ChatService,
        request: ChatRequest,
        lease: Lease,
        upstream: Any,
        chunks: AsyncIterator[bytes],
        decoder: ChatDecoder,
        first: list[Event],
        attachments: int,
    ) -> None:
        self.service = service
        self.request = request
        self.lease = lease
        self.decoder = decoder
        self._upstream = upstream
        self._chunks = chunks
        self._first = first
        self._attachments = attachments
        self._limits = Limits(request.stop, request.max_output_tokens)
        self._tools = (
            ToolFilter(request.tools) if request.tools is not None and request.tools.active else None
        )
        self.usage: Usage | None = None  # what the client is told, once the answer finished
        self.upstream_wait = 0.0  # seconds the opening spent on the upstream (set by the service)
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._released = False
        self._outcome: Outcome | None = None  # set when the answer ended, applied after the last yield
        self._interrupted: GatewayError | None = None
        self._reading: asyncio.Task[Any] | None = None  # the task awaiting the upstream, while it does
        self._emit: Callable[[list[Event]], bool] | None = None  # push_to's target, while set
        self._kept: list[Event] = []  # decoded by the upstream's sink, for the iteration
        self._push_error: BaseException | None = None
        self._gen = self._run()
        service.active.add(self)

    def interrupt(self, error: GatewayError) -> None:
        """End the answer early with `error` as its terminal event (the gateway is shutting
        down): a pending upstream read is cut; the lease is released as CANCELLED."""
        if self._interrupted is not None or self._released:
            return
        self._interrupted = error
        if self._reading is not None:
            self._reading.cancel()

    @property
    def outcome(self) -> Outcome | None:
        """How the answer ended for the account (None while it runs)."""
        return self._outcome

    @property
    def failure_kind(self) -> str:
        """The upstream failure that ended the answer, if one did ("" otherwise)."""
        outcome = self._outcome
        if outcome is None or outcome.kind in (OutcomeKind.SUCCESS, OutcomeKind.CANCELLED):
            return ""
        return outcome.kind.value

    @property
    def account_id(self) -> str:
        return self.lease.account_id

    async def aclose(self) -> None:
        await self._gen.aclose()
        await self._finish(self._outcome or Outcome(OutcomeKind.CANCELLED))

    def push_to(self, emit: Callable[[list[Event]], bool] | None) -> bool:
        """Hand later batches of plain text and reasoning to `emit` as the upstream delivers them,
        synchronously, without waking the task that iterates this stream (None: stop). Anything
        else (the end, a failure, an image, a tool call) still comes out of the iteration, in
        order. `emit(batch)` returns False, having done nothing, when it cannot take the batch
        now; it may raise, and the iteration then raises the same exception. Returns False when
        the upstream cannot hand bytes over this way (nothing is set then)."""
        set_sink = getattr(self._upstream, "set_sink", None)
        if set_sink is None:
            return False
        if emit is None:
            self._emit = None
            return bool(set_sink(None))
        if not set_sink(self._pushed):
            return False
        self._emit = emit
        return True

    def _pushed(self, data: bytes) -> bool:
        """The upstream's sink (called inside its read): decode, filter and emit, or keep the
        batch for the iteration; False when the iteration must run."""
        try:
            batch = self._filter(self.decoder.feed(data))
            if not batch:
                return True
            emit = self._emit
            if (
                emit is not None
                and self._interrupted is None
                and all(type(e) in _PUSHED for e in batch)
                and emit(batch)
            ):
                for event in batch:
                    (self._text if type(event) is TextDelta else self._reasoning).append(event.text)  # type: ignore[union-attr]
                return True
            self._kept += batch
        except BaseException as exc:  # raised where the iteration runs, not inside the upstream's read
            self._push_error = exc
            self._emit = None
        return False

    async def _run(self) -> AsyncGenerator[list[Event], None]:
        try:
            batch = self._filter(self._first)
            self._first = []
            while True:
                out = await self._settle(batch)
                if self._interrupted is not None and self._outcome is not None:
                    self._outcome = Outcome(OutcomeKind.CANCELLED)  # not the account's fault
                if out:
                    yield out
                if self._outcome is not None:
                    await self._finish(self._outcome)
                    return
                if self._interrupted is not None:
                    batch = self._filter([Fault(self._interrupted)])
                    continue
                try:
                    self._reading = asyncio.current_task()
                    chunk = await self._chunks.__anext__()
                    batch = self._filter(self.decoder.feed(chunk))
                except StopAsyncIteration:
                    batch = self._filter(self.decoder.flush())
                except UpstreamFailure as failure:
                    batch = self._filter([Fault(failure.to_error(), failure)])
                except asyncio.CancelledError:
                    if self._interrupted is None or self._reading is None:
                        raise
                    self._reading.uncancel()
                    batch = self._filter([Fault(self._interrupted)])
                finally:
                    self._reading = None
                if self._kept:  # what the sink decoded but could not emit comes first
                    batch, self._kept = self._kept + batch, []
                if self._push_error is not None:
                    error, self._push_error = self._push_error, None
                    raise error
        finally:
            self._emit = None
            await self._upstream.aclose()
            await self._finish(self._outcome or Outcome(OutcomeKind.CANCELLED))

    def _filter(self, batch: list[Event]) -> list[Event]:
        if self._tools is not None:  # before the limits: markup is not answer text
            batch = self._tools.apply(batch)
        if self._limits.active:
            batch = self._limits.apply(batch)
        return batch

    async def _settle(self, batch: list[Event]) -> list[Event]:
        text = self._text
        reasoning = self._reasoning
        fmt = self.service.settings.image_format
        for i, event in enumerate(batch):
            kind = type(event)
            if kind is TextDelta:
                text.append(event.text)  # type: ignore[union-attr]
            elif kind is ReasoningDelta:
                reasoning.append(event.text)  # type: ignore[union-attr]
            elif kind is ImageOut and fmt == "b64_json":
                batch[i] = await self._inline(event)  # type: ignore[arg-type]
            elif kind is Finish:
                usage = estimate_usage(
                    self.request.message, "".join(text), "".join(reasoning), attachments=self._attachments
                )
                batch.insert(i, usage)
                self.usage = usage
                # Released after the batch went out: the store's write is not on the client's path.
                self._outcome = Outcome.success()
                return batch[: i + 2]
            elif kind is Fault:
                failure = event.failure  # type: ignore[union-attr]
                if failure is None:
                    failure = transport_failure(event.error.message)  # type: ignore[union-attr]
                settings = self.service.settings
                self._outcome = failure.outcome(self.service.clock(), settings.cooldown_seconds, started=True)
                return batch[: i + 1]
        return batch

    async def _inline(self, image: ImageOut) -> ImageOut:
        """`image_format=b64_json`: fetch the asset with the account's cookie, inline it."""
        if not image.final or image.moderated:
            return image
        try:
            data, mime = await self.service.upstream.download(
                self.lease.token, image.url, self.service.settings.fetch_max_bytes
            )
        except (UpstreamFailure, GatewayError) as exc:
            log.info("inlining image failed, keeping the URL: %s", exc)
            return image
        url = f"data:{mime or 'image/jpeg'};base64,{base64.b64encode(data).decode('ascii')}"
        return ImageOut(url, image.progress, image.final, image.moderated, image.id)

    async def _finish(self, outcome: Outcome) -> None:
        if self._released:
            return
        self._released = True
        self.service.active.discard(self)
        await self.service.leasing.release(self.lease, outcome)
