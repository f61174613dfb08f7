"""Imagine and media wire format: size -> aspect, E4 messages and frames, E1 media bodies.

Pure: builders return what the adapter sends; `ImagineDecoder.feed(frame)` turns one E4 frame
into slot updates, with no I/O (docs/protocol.md#imagine, #media).

E4 round: the client sends a reset, then a request; the server sends, per slot, `start_stage`,
a few `image` frames (base64 `blob`, `percentage_complete`), then `completed` (with `moderated`).
A round is done when as many slots completed as were asked for (`num_generations`), or an
`error` frame arrives (fatal for the round).
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from core.protocol.classify import Kind, UpstreamFailure, classify_inband

# OpenAI sizes (and Imagine's own ratio strings) -> Imagine aspect ratios ([v2] + [v3] tables).
IMAGE_ASPECTS: dict[str, str] = {
    "1024x1024": "1:1",
    "1280x720": "16:9",
    "720x1280": "9:16",
    "1792x1024": "3:2",
    "1024x1792": "2:3",
    "1536x1024": "3:2",
    "1024x1536": "2:3",
    **{r: r for r in ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "2:1", "1:2")},
}
DEFAULT_IMAGE_ASPECT = "2:3"
VIDEO_ASPECTS: dict[str, str] = {
    "720x1280": "9:16",
    "1024x1792": "9:16",
    "1280x720": "16:9",
    "1792x1024": "16:9",
    "1024x1024": "1:1",
}
VIDEO_PRESETS = {
    "fun": "--mode=extremely-crazy",
    "normal": "--mode=normal",
    "spicy": "--mode=extremely-spicy-or-crazy",
    "custom": "--mode=custom",
}
MAX_VIDEO_SECONDS = 15  # one upstream segment ([v3] duration 1-15)


def now_ms() -> int:
    return int(time.time() * 1000)


# --- E4: client messages ------------------------------------------------------------------------


def imagine_reset(timestamp: int | None = None) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "timestamp": timestamp if timestamp is not None else now_ms(),
        "item": {"type": "message", "content": [{"type": "reset"}]},
    }


def imagine_request(
    prompt: str,
    *,
    aspect: str,
    pro: bool,
    count: int,
    nsfw: bool = False,
    request_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, Any]:
    properties = {
        "section_count": 0,
        "is_kids_mode": False,
        "enable_nsfw": nsfw,
        "skip_upsampler": False,
        "enable_side_by_side": True,
        "is_initial": False,
        "aspect_ratio": aspect,
        "enable_pro": pro,
        "num_generations": count,
    }
    item = {
        "requestId": request_id or str(uuid.uuid4()),
        "text": prompt,
        "type": "input_text",
        "properties": properties,
    }
    return {
        "type": "conversation.item.create",
        "timestamp": timestamp if timestamp is not None else now_ms(),
        "item": {"type": "message", "content": [item]},
    }


# --- E4: server frames --------------------------------------------------------------------------


@dataclass(slots=True)
class Slot:
    """One image of a round. `data` is the last full-progress blob (decoded), `url` its asset URL."""

    id: str
    order: int = 0
    progress: int = 0
    url: str = ""
    data: bytes = b""
    preview: bytes = b""
    completed: bool = False
    moderated: bool = False


@dataclass(slots=True)
class ImagineDecoder:
    """Collects one round's slots; `done` once `expected` slots completed; errors are raised."""

    expected: int
    assets_url: str = "https://assets.grok.com"
    slots: dict[str, Slot] = field(default_factory=dict)
    _orders: dict[int, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return sum(1 for s in self.slots.values() if s.completed) >= self.expected

    def finals(self) -> list[Slot]:
        """Completed, unmoderated slots with pixels or a URL, in slot order."""
        return sorted(
            (s for s in self.slots.values() if s.completed and not s.moderated and (s.data or s.url)),
            key=lambda s: s.order,
        )

    def moderated(self) -> int:
        return sum(1 for s in self.slots.values() if s.completed and s.moderated)

    @property
    def progress(self) -> int:
        """The round's progress, 0-100: the mean over the expected slots (unseen ones at 0)."""
        done = sum(100 if s.completed else s.progress for s in self.slots.values())
        return min(100, done // max(1, self.expected))

    def feed(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "error":
            raise imagine_error(frame)
        if kind == "json":
            status = frame.get("current_status")
            slot = self._slot(frame)
            if slot is None:
                return
            if status == "completed":
                slot.completed = True
                slot.moderated = bool(frame.get("moderated"))
                self._take(slot, frame, final=True)
        elif kind == "image":
            slot = self._slot(frame)
            if slot is None:
                return
            pct = frame.get("percentage_complete")
            final = pct is None or _int(pct) >= 100
            slot.progress = 100 if final else max(slot.progress, _int(pct))
            self._take(slot, frame, final=final)

    def _slot(self, frame: dict[str, Any]) -> Slot | None:
        order = frame.get("order", frame.get("side_by_side_index", frame.get("grid_index")))
        ident = frame.get("image_id") or frame.get("job_id") or frame.get("id")
        if not ident:
            url = frame.get("url")
            if isinstance(url, str) and url:
                ident = url.rsplit("/", 1)[-1].split(".", 1)[0]
            elif isinstance(order, int) and order in self._orders:
                ident = self._orders[order]
        if not ident:
            return None
        ident = str(ident)
        slot = self.slots.get(ident)
        if slot is None:
            slot = self.slots[ident] = Slot(ident, order if isinstance(order, int) else len(self.slots))
            self._orders[slot.order] = ident
        return slot

    def _take(self, slot: Slot, frame: dict[str, Any], *, final: bool) -> None:
        url = frame.get("url")
        if isinstance(url, str) and url and final:
            slot.url = absolute(url, self.assets_url)
        blob = frame.get("blob")
        if isinstance(blob, str) and blob:
            data = decode_blob(blob)
            if data:
                if final:
                    slot.data = data
                else:
                    slot.preview = data


def imagine_error(frame: dict[str, Any]) -> UpstreamFailure:
    code = str(frame.get("err_code") or "")
    message = str(frame.get("err_msg") or code or "Imagine error")
    if "rate_limit" in code:
        return UpstreamFailure(Kind.RATE_LIMITED, f"imagine error {code}: {message}")
    if code == "anti_bot":
        return UpstreamFailure(Kind.ANTI_BOT, f"imagine error {code}: {message}")
    failure = classify_inband({"message": message, "code": code})
    if failure.kind is Kind.TRANSIENT and code == "invalid_request":
        return UpstreamFailure(Kind.REJECTED, f"imagine error {code}: {message}")
    return failure


def decode_blob(blob: str) -> bytes:
    if blob.startswith("data:"):
        blob = blob.partition(",")[2]
    try:
        return base64.b64decode(blob, validate=False)
    except (binascii.Error, ValueError):
        return b""


def absolute(path: str, assets_url: str) -> str:
    if path.startswith(("http://", "https://")):
        return path
    return assets_url.rstrip("/") + "/" + path.lstrip("/")


def _int(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


# --- E1 media bodies ----------------------------------------------------------------------------


def edit_body(prompt: str, file_ids: list[str], aspect: str | None = None) -> dict[str, Any]:
    """The [v3] image edit (docs/protocol.md#media): `mediaGenInput.imageToImage` over uploaded inputs."""
    spec: dict[str, Any] = {"prompt": prompt, "inputAssets": list(file_ids)}
    if aspect:
        spec["aspectRatio"] = aspect
    return {
        "modelName": "imagine-image-edit",
        "message": prompt,
        "enableImageStreaming": True,
        "enableSideBySide": True,
        "sendFinalMetadata": True,
        "mediaGenInput": {"imageToImage": spec},
    }


def video_body(prompt: str, *, aspect: str, seconds: int, resolution: str, preset: str) -> dict[str, Any]:
    """The [v3] text-to-video body (same section): one segment, `mediaGenInput.textToVideo`."""
    return {
        "modelName": "imagine-video-gen",
        "message": f"{prompt} {VIDEO_PRESETS[preset]}",
        "enableImageStreaming": True,
        "enableSideBySide": True,
        "sendFinalMetadata": True,
        "responseMetadata": {"experiments": [], "modelConfigOverride": {"modelMap": {}}},
        "mediaGenInput": {
            "textToVideo": {
                "prompt": prompt,
                "aspectRatio": aspect,
                "duration": seconds,
                "resolutionName": resolution,
            }
        },
        "kind": "CONVERSATION_KIND_IMAGINE",
    }


MEDIA_POST_PATH = "/rest/media/post/create"  # E13
IMAGE_TO_VIDEO_SECONDS = (6, 10)  # one [v2] segment


def image_post_body(media_url: str) -> dict[str, Any]:
    """E13: the image media post an image-to-video generation hangs from (docs/protocol.md#media)."""
    return {"mediaType": "MEDIA_POST_TYPE_IMAGE", "mediaUrl": media_url}


def post_id_of(answer: Any) -> str | None:
    post = answer.get("post") if isinstance(answer, dict) else None
    value = post.get("id") if isinstance(post, dict) else None
    return str(value) if value else None


def image_video_body(
    prompt: str, *, media_url: str, post_id: str, aspect: str, seconds: int, resolution: str, preset: str
) -> dict[str, Any]:
    """The [v2] image-to-video body (same section): the image's post is the parent and the attachment."""
    return {
        "temporary": True,
        "modelName": "grok-3",
        "message": f"{media_url}  {prompt} {VIDEO_PRESETS[preset]}",
        "fileAttachments": [post_id],
        "toolOverrides": {"videoGen": True},
        "enableSideBySide": True,
        "responseMetadata": {
            "experiments": [],
            "modelConfigOverride": {
                "modelMap": {
                    "videoGenModelConfig": {
                        "parentPostId": post_id,
                        "aspectRatio": aspect,
                        "videoLength": seconds,
                        "resolutionName": resolution,
                    }
                }
            },
        },
    }


def is_video_url(url: str) -> bool:
    """[v3]: a video URL ends in .mp4 or names a /content asset."""
    path = url.split("?", 1)[0]
    return path.endswith(".mp4") or "/content" in path


ASSETS_PATH = "/rest/assets"  # E7
ASSETS_QUERY = "pageSize=50&orderBy=ORDER_BY_LAST_USE_TIME&source=SOURCE_ANY&isLatest=true"


def find_video_asset(listing: Any, *, video_id: str, since: float, assets_url: str) -> tuple[str, str] | None:
    """A generated video in an E7 listing, as (video URL, thumbnail URL or ""), or None.

    The asset whose id is the upstream's `videoId` when it is known; otherwise the newest video
    generated since `since` (a runner that died before the upstream named the video).
    """
    items = listing.get("assets") or listing.get("items") if isinstance(listing, dict) else None
    if not isinstance(items, list):
        return None
    best: tuple[float, dict[str, Any]] | None = None
    for item in items:
        if not isinstance(item, dict) or not str(item.get("mimeType", "")).startswith("video/"):
            continue
        asset_id = str(item.get("assetId") or item.get("id") or "")
        if video_id:
            if asset_id == video_id:
                best = (0.0, item)
                break
            continue
        created = _iso_seconds(str(item.get("createTime") or ""))
        if created >= since and (best is None or created > best[0]):
            best = (created, item)
    if best is None:
        return None
    key = str(best[1].get("key") or "")
    if not key:
        return None
    url = absolute(key, assets_url)
    thumb = key.rsplit("/", 1)[0] + "/preview_image.jpg" if key.endswith("generated_video.mp4") else ""
    return url, absolute(thumb, assets_url) if thumb else ""


def next_page_token(listing: Any) -> str:
    """The E7 answer's next page, or "" on the last one."""
    token = listing.get("nextPageToken") if isinstance(listing, dict) else None
    return str(token) if token else ""


def _iso_seconds(value: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
