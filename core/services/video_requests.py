"""What a video request may ask, checked against the catalog: every refusal is an `InvalidRequest`
naming the parameter, raised before anything is stored or sent.

    check_request   create and remix: model, prompt, seconds, size, resolution, preset, reference
    check_fields    the same, of a mapping (a client's fields)
    request_of      a stored job's request, checked again (a runner reads it back from the job)
    check_prompt    a remix's new prompt
    check_page      a list's `limit` and `order`
    check_variant   what a content download asks for
    owner_of        who asks: a job belongs to the API key that made it
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.catalog import Capability, Model, require_capability
from core.errors import InvalidRequest
from core.ports import Job
from core.protocol.media import IMAGE_TO_VIDEO_SECONDS, MAX_VIDEO_SECONDS

DEFAULT_MODEL = "grok-imagine-video"
DEFAULT_SECONDS = 6
DEFAULT_SIZE = "720x1280"
MAX_LIST = 100
VARIANTS = ("video", "thumbnail")


@dataclass(frozen=True, slots=True)
class VideoRequest:
    model: Model
    prompt: str
    seconds: int
    size: str
    resolution: str
    preset: str
    reference: str = ""  # a stored image (MediaStore id) to animate: image-to-video

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model.id,
            "prompt": self.prompt,
            "seconds": self.seconds,
            "size": self.size,
            "resolution": self.resolution,
            "preset": self.preset,
        }
        if self.reference:
            params["reference"] = self.reference
        return params


def check_request(
    *,
    model: Any,
    prompt: Any,
    seconds: Any,
    size: Any,
    resolution: Any = None,
    preset: Any = None,
    reference: str = "",
) -> VideoRequest:
    """The request, or an `InvalidRequest` naming the parameter (limits from the catalog)."""
    chosen = require_capability(
        model if isinstance(model, str) and model else DEFAULT_MODEL, Capability.VIDEO
    )
    limits = chosen.limits
    prompt = check_prompt(prompt)
    allowed = tuple(int(s) for s in _choices(limits, "seconds") if int(s) <= MAX_VIDEO_SECONDS)
    if reference:  # image-to-video is one segment of the older protocol ([v2])
        allowed = tuple(s for s in allowed if s in IMAGE_TO_VIDEO_SECONDS)
    if seconds is None or seconds == "":
        seconds = DEFAULT_SECONDS
    if isinstance(seconds, str) and seconds.strip().isdigit():
        seconds = int(seconds)
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds not in allowed:
        raise InvalidRequest(
            f"'seconds' must be one of {', '.join(map(str, allowed))} for {chosen.id} (got {seconds!r}).",
            param="seconds",
        )
    sizes = _choices(limits, "sizes")
    size = size or DEFAULT_SIZE
    if size not in sizes:
        raise InvalidRequest(f"'size' must be one of {', '.join(sizes)} (got {size!r}).", param="size")
    resolutions = _choices(limits, "resolutions")
    resolution = resolution or "720p"
    if resolution not in resolutions:
        raise InvalidRequest(
            f"'resolution_name' must be one of {', '.join(resolutions)} (got {resolution!r}).",
            param="resolution_name",
        )
    presets = _choices(limits, "presets")
    preset = preset or "custom"
    if preset not in presets:
        raise InvalidRequest(
            f"'preset' must be one of {', '.join(presets)} (got {preset!r}).", param="preset"
        )
    return VideoRequest(chosen, prompt, seconds, str(size), str(resolution), str(preset), reference)


def check_fields(
    fields: Mapping[str, Any], *, reference: str, resolution: str = "resolution"
) -> VideoRequest:
    """`check_request` of a mapping of fields; the resolution is under the key `resolution`."""
    return check_request(
        model=fields.get("model"),
        prompt=fields.get("prompt"),
        seconds=fields.get("seconds"),
        size=fields.get("size"),
        resolution=fields.get(resolution),
        preset=fields.get("preset"),
        reference=reference,
    )


def request_of(job: Job) -> VideoRequest:
    return check_fields(job.params, reference=str(job.params.get("reference") or ""))


def check_prompt(prompt: Any) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("'prompt' is required and must be a non-empty string.", param="prompt")
    return prompt.strip()


def check_page(limit: Any, order: Any) -> tuple[int, str]:
    """(how many videos, "asc" or "desc"): 20 newest first unless asked otherwise."""
    if order is None or order == "":
        order = "desc"
    if order not in ("asc", "desc"):
        raise InvalidRequest(f"'order' must be 'asc' or 'desc' (got {order!r}).", param="order")
    try:
        count = 20 if limit in (None, "") else int(limit)
    except (TypeError, ValueError):
        count = 0
    if not 1 <= count <= MAX_LIST:
        raise InvalidRequest(
            f"'limit' must be an integer from 1 to {MAX_LIST} (got {limit!r}).", param="limit"
        )
    return count, str(order)


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise InvalidRequest(f"'variant' must be 'video' or 'thumbnail' (got {variant!r}).", param="variant")
    return variant


def owner_of(api_key: str | None) -> str:
    """Who owns a job: a hash of the API key that made it ("" when the gateway is open)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:32] if api_key else ""


def _choices(limits: dict[str, object], key: str) -> tuple[Any, ...]:
    value = limits.get(key)
    return tuple(value) if isinstance(value, tuple | list) else ()
