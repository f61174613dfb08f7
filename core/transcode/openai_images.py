"""Delivered images as OpenAI clients see them.

images_body(result)   the Images API answer: `{created, data: [{url} | {b64_json}]}`
markdown(result)      the same images as the text of a chat answer (media through chat)
"""

from __future__ import annotations

import base64
from typing import Any

from core.media import GeneratedImages, Picture


def image_item(image: Picture) -> dict[str, Any]:
    """`{"url": link}` for a stored image, `{"b64_json": ...}` for an inline one."""
    if image.url is None:
        return {"b64_json": base64.b64encode(image.data).decode("ascii")}
    return {"url": image.url}


def images_body(result: GeneratedImages) -> dict[str, Any]:
    return {"created": result.created, "data": [image_item(image) for image in result.images]}


def markdown(result: GeneratedImages) -> str:
    """One markdown image per delivered image, numbered from 1, separated by blank lines; an
    inline image is a data URL labelled image/png whatever its format."""
    lines = []
    for index, image in enumerate(result.images, 1):
        if image.url is None:
            encoded = base64.b64encode(image.data).decode("ascii")
            lines.append(f"![image {index}](data:image/png;base64,{encoded})")
        else:
            lines.append(f"![image {index}]({image.url})")
    return "\n\n".join(lines)
