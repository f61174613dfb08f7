"""Image generation and editing: generate on leased accounts, store, deliver (the request was
checked before: core/services/image_requests.py).

    grok-imagine-image-lite   chat call `Drawing: <prompt>` (E1, mode fast); two images per
                              request, so ceil(n/2) requests run concurrently
    grok-imagine-image(-pro)  one Imagine WebSocket round (E4) asking for n slots
    grok-imagine-image-edit   Imagine upload (E6) of each input, then E1 `imageToImage`; one image
                              per request, n requests

Every upstream request holds its own lease (one quota unit). Images are taken from the E4 blob
when it carries the final pixels, otherwise downloaded from the assets host with the account's
cookie (the Upstream adapter refuses any other host). Moderated images are never delivered; if
all are, the client gets a 400 `content_policy_violation`. Delivery: `url` stores the bytes in
the MediaStore and hands back its link (the upstream asset URL is not public); `b64_json` hands
back the bytes. The result is a `GeneratedImages` (core/media.py); the dialect renders it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from core.accounts import Lease
from core.catalog import Capability
from core.errors import InvalidRequest, UpstreamError
from core.events import Fault, ImageOut
from core.media import GeneratedImages, Picture
from core.ports import ImagineUpstream, MediaStore, Upstream
from core.protocol.classify import UpstreamFailure, empty_stream
from core.protocol.frames import FrameDecoder
from core.protocol.media import (
    DEFAULT_IMAGE_ASPECT,
    ImagineDecoder,
    edit_body,
    imagine_request,
    imagine_reset,
)
from core.services.chat import ChatService
from core.services.image_requests import ImageRequest
from core.settings import Settings
from core.transcode.normalize import ChatRequest, sniff_image

log = logging.getLogger("grokgate.images")
MAX_IMAGE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Batch:
    """What one upstream request produced: usable pictures and how many were moderated."""

    pictures: list[Picture]
    moderated: int


class ImageService:
    """Args:
    settings: assets URL, Imagine's NSFW switch.
    chat: the chat service (image-lite is a chat call); its failover loop serves every call.
    upstream: E1 and asset downloads.
    imagine: the E4 WebSocket and E6 uploads.
    media: where delivered images are stored.
    clock: seconds since the epoch.
    """

    def __init__(
        self,
        settings: Settings,
        chat: ChatService,
        upstream: Upstream,
        imagine: ImagineUpstream,
        media: MediaStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.chat = chat
        self.upstream = upstream
        self.imagine = imagine
        self.media = media
        self.clock = clock
        self.leasing = chat.leasing  # one failover loop for chat and media calls

    async def generate(
        self, request: ImageRequest, progress: Callable[[int], None] | None = None
    ) -> GeneratedImages:
        """The delivered images: stored and linked, or inline (`request.response_format`).

        `progress`, if given, is called with the upstream's progress (0-100) as it rises (the
        Imagine round's; the lite and edit calls report their images' frames)."""
        model = request.model
        report = _Rising(progress)
        if model.capability is Capability.IMAGE_EDIT:
            batches = await asyncio.gather(*(self._edit(request) for _ in range(request.n)))
        elif "pro" in model.limits:
            batches = [await self.leasing.run(model, lambda lease: self._imagine(request, lease, report))]
        else:
            batches = await asyncio.gather(
                *(self._lite(request, report) for _ in range((request.n + 1) // 2))
            )
        pictures = [p for batch in batches for p in batch.pictures][: request.n]
        moderated = sum(batch.moderated for batch in batches)
        if not pictures:
            if moderated:
                raise InvalidRequest(
                    f"All {moderated} generated image(s) were blocked by the upstream's moderation; "
                    "nothing can be delivered. Rephrase the prompt.",
                    param="prompt",
                    code="content_policy_violation",
                )
            raise UpstreamError("The upstream finished without producing an image.", code="no_image")
        if len(pictures) < request.n:
            log.info(
                "%s: %d of %d images delivered (%d moderated)", model.id, len(pictures), request.n, moderated
            )
        created = int(self.clock())
        return GeneratedImages(created, tuple([await self._deliver(request, p) for p in pictures]))

    async def _deliver(self, request: ImageRequest, picture: Picture) -> Picture:
        if request.response_format == "b64_json":
            return picture
        media_id = await self.media.put(picture.data, picture.mime)
        return replace(picture, url=await self.media.link(media_id, request.base_url))

    # --- lite: a chat call that draws ---------------------------------------------------------

    async def _lite(self, request: ImageRequest, report: _Rising | None = None) -> Batch:
        stream = await self.chat.open(
            ChatRequest(request.model, "Drawing: " + request.prompt, reasoning=False)
        )
        images: list[ImageOut] = []
        moderated = 0
        try:
            async for batch in stream:
                for event in batch:
                    if isinstance(event, ImageOut) and report is not None:
                        report(event.progress)
                    if isinstance(event, ImageOut) and event.final:
                        if event.moderated:
                            moderated += 1
                        else:
                            images.append(event)
                    elif isinstance(event, Fault) and not images:
                        raise event.error
        finally:
            await stream.aclose()
        pictures = [await self._fetch(stream.lease, image.url) for image in _unique(images)]
        return Batch(pictures, moderated)

    # --- Imagine WebSocket -------------------------------------------------------------------

    async def _imagine(self, request: ImageRequest, lease: Lease, report: _Rising | None = None) -> Batch:
        pro = bool(request.model.limits.get("pro"))
        decoder = ImagineDecoder(request.n, self.settings.assets_url)
        socket = await self.imagine.connect(lease.token)
        try:
            await socket.send(imagine_reset())
            await socket.send(
                imagine_request(
                    request.prompt,
                    aspect=request.aspect or DEFAULT_IMAGE_ASPECT,
                    pro=pro,
                    count=request.n,
                    nsfw=self.settings.imagine_nsfw,
                )
            )
            try:
                async for frame in socket:
                    decoder.feed(frame)
                    if report is not None:
                        report(decoder.progress)
                    if decoder.done:
                        break
            except UpstreamFailure:
                if not decoder.finals():
                    raise
                log.info("imagine round broke off after %d image(s); delivering those", len(decoder.finals()))
        finally:
            await socket.aclose()
        finals = decoder.finals()
        if not finals and not decoder.moderated():
            raise empty_stream()
        pictures = [
            Picture(slot.data, sniff_image(slot.data) or "image/jpeg")
            if slot.data
            else await self._fetch(lease, slot.url)
            for slot in finals
        ]
        return Batch(pictures, decoder.moderated())

    # --- edit: Imagine uploads + E1 imageToImage ---------------------------------------------

    async def _edit(self, request: ImageRequest) -> Batch:
        return await self.leasing.run(request.model, lambda lease: self._edit_once(request, lease))

    async def _edit_once(self, request: ImageRequest, lease: Lease) -> Batch:
        ids = [await self.imagine.upload(lease.token, f.name, f.mime, f.data or b"") for f in request.images]
        stream = await self.upstream.chat(lease.token, edit_body(request.prompt, ids, request.aspect))
        decoder = FrameDecoder(assets_url=self.settings.assets_url)
        images: list[ImageOut] = []
        moderated: set[str] = set()
        try:
            events = []
            async for chunk in stream:
                events = decoder.feed(chunk)
                _collect(events, images, moderated)
                if decoder.done:
                    break
            if not decoder.done:
                _collect(decoder.flush(), images, moderated)
        finally:
            await stream.aclose()
        pictures = [
            await self._fetch(lease, image.url) for image in _unique(images) if image.url not in moderated
        ]
        return Batch(pictures, len(moderated))

    async def _fetch(self, lease: Lease, url: str) -> Picture:
        if url.startswith("data:"):  # the chat service inlined it already (image_format=b64_json)
            head, _, payload = url.partition(",")
            data = base64.b64decode(payload)
            return Picture(data, head[5:].split(";", 1)[0] or sniff_image(data) or "image/jpeg")
        data, mime = await self.upstream.download(lease.token, url, MAX_IMAGE_BYTES)
        sniffed = sniff_image(data)
        if sniffed is None:
            raise UpstreamError("The upstream's image download was not an image.", code="bad_asset")
        return Picture(data, sniffed if not mime.startswith("image/") else mime)


class _Rising:
    """Calls `callback` with a progress value only when it rises (any number of reporters)."""

    __slots__ = ("callback", "value")

    def __init__(self, callback: Callable[[int], None] | None) -> None:
        self.callback = callback
        self.value = -1

    def __call__(self, value: int) -> None:
        if self.callback is not None and value > self.value:
            self.value = value
            self.callback(min(100, max(0, value)))


def _collect(events: list[Any], images: list[ImageOut], moderated: set[str]) -> None:
    for event in events:
        if isinstance(event, ImageOut) and event.final:
            if event.moderated:
                moderated.add(event.url)
            else:
                images.append(event)
        elif isinstance(event, Fault):
            if event.failure is not None and not images:
                raise event.failure
            if event.failure is None and not images:
                raise event.error


def _unique(images: list[ImageOut]) -> list[ImageOut]:
    seen: set[str] = set()
    out = []
    for image in images:
        if image.url not in seen:
            seen.add(image.url)
            out.append(image)
    return out
