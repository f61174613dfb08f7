"""What an image request may ask, checked against the catalog: every refusal is an
`InvalidRequest` naming the parameter, raised before any account is leased.

    check_request   prompt, n, size (-> the upstream's aspect ratio), response_format
    check_images    an edit's input images
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.catalog import Capability, Model
from core.errors import InvalidRequest
from core.protocol.media import DEFAULT_IMAGE_ASPECT, IMAGE_ASPECTS
from core.transcode.normalize import Attachment, check_attachment

RESPONSE_FORMATS = ("url", "b64_json")


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """A validated generation or edit: `aspect` is None when the size is left to the upstream."""

    model: Model
    prompt: str
    n: int
    aspect: str | None
    response_format: str
    base_url: str  # where local media links point (public_url or the request's own base)
    images: tuple[Attachment, ...] = ()


def check_request(
    model: Model,
    *,
    prompt: Any,
    n: Any,
    size: Any,
    response_format: Any,
    default_format: str,
    base_url: str,
    images: Sequence[Attachment] = (),
) -> ImageRequest:
    """The request, or an `InvalidRequest` naming the parameter (limits from the catalog)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("'prompt' is required and must be a non-empty string.", param="prompt")
    limits = model.limits
    n_min, n_max = int(str(limits.get("n_min", 1))), int(str(limits.get("n_max", 1)))
    if n is None:
        n = 1
    if isinstance(n, str) and n.strip().isdigit():
        n = int(n)
    if not isinstance(n, int) or isinstance(n, bool) or not n_min <= n <= n_max:
        raise InvalidRequest(
            f"'n' must be an integer from {n_min} to {n_max} for {model.id} (got {n!r}).", param="n"
        )
    fmt = response_format if response_format is not None else default_format
    if fmt not in RESPONSE_FORMATS:
        if response_format is None:
            fmt = "url"
        else:
            raise InvalidRequest(
                f"'response_format' must be 'url' or 'b64_json' (got {response_format!r}).",
                param="response_format",
            )
    return ImageRequest(model, prompt.strip(), n, _aspect(model, size), str(fmt), base_url, tuple(images))


def _aspect(model: Model, size: Any) -> str | None:
    if size is None or size == "auto":
        if model.capability is Capability.IMAGE and "sizes" not in model.limits:
            return DEFAULT_IMAGE_ASPECT
        return None
    if not isinstance(size, str):
        raise InvalidRequest("'size' must be a string such as '1024x1024'.", param="size")
    if "sizes" in model.limits:
        allowed = model.limits["sizes"]
        if not isinstance(allowed, tuple):
            raise InvalidRequest(
                f"{model.id} cannot choose the image size: omit 'size' (or send 'auto'), or use "
                "grok-imagine-image, which can.",
                param="size",
            )
        if size not in allowed:
            raise InvalidRequest(
                f"'size' must be one of {', '.join(allowed)} for {model.id} (got {size!r}).", param="size"
            )
        return IMAGE_ASPECTS.get(size)
    if size not in IMAGE_ASPECTS:
        raise InvalidRequest(
            f"'size' must be 'auto' or one of {', '.join(IMAGE_ASPECTS)} for {model.id} (got {size!r}).",
            param="size",
        )
    return IMAGE_ASPECTS[size]


def check_images(files: Sequence[Attachment], model: Model) -> tuple[Attachment, ...]:
    """Edit inputs: 1..max_references images (JPEG, PNG, WebP, GIF by their bytes)."""
    limit = int(str(model.limits.get("max_references", 5)))
    if not files:
        raise InvalidRequest("'image' is required: upload at least one image to edit.", param="image")
    if len(files) > limit:
        raise InvalidRequest(f"'image': at most {limit} images for {model.id}.", param="image")
    checked = tuple(check_attachment(f) for f in files)
    for f in checked:
        if not f.mime.startswith("image/"):
            raise InvalidRequest(f"'{f.param}': only images can be edited (got {f.mime}).", param="image")
    return checked
