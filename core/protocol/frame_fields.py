"""What the fields of one chat frame say, as values: a search result's page, a tool card's tool,
an image, a video. Pure functions of the fields; the stream's state (what was already emitted,
the runs of text) stays in `FrameDecoder` (core/protocol/frames.py).
"""

from __future__ import annotations

from typing import Any

from core.events import ImageOut, VideoOut

_TOOL_NAMES = {
    "webSearch": "web_search",
    "xSearch": "x_search",
    "xKeywordSearch": "x_keyword_search",
    "xSemanticSearch": "x_semantic_search",
    "browsePage": "browse_page",
    "searchImages": "search_images",
    "imageSearch": "search_images",
    "chatroomSend": "chatroom_send",
    "codeExecution": "code_execution",
}


def source(item: dict[str, Any]) -> tuple[str, str]:
    """(url, title) of one search result: a web page, or an X post (its URL built from the
    author and the post id; the start of its text as the title)."""
    url = str(item.get("url") or "")
    title = str(item.get("title") or "")
    post = item.get("postId") or item.get("post_id")
    user = item.get("username") or item.get("userhandle")
    if not url and post and user:
        url = f"https://x.com/{user}/status/{post}"
    if not title and post:
        text = " ".join(str(item.get("text") or "").split())
        title = f"@{user}: {text[:80]}" if text else f"@{user}"
    return url, title


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def tool_use(response: dict[str, Any], token: str) -> tuple[str, dict[str, Any]]:
    """(name, arguments) of the tool an F5 tool card calls: from its `toolUsageCard`, else the
    name in its token's `<xai:tool_name>` tag; no name: ("", {})."""
    card = response.get("toolUsageCard")
    name = ""
    args: dict[str, Any] = {}
    if isinstance(card, dict):
        for key, value in card.items():
            if key != "toolUsageCardId":
                name = _TOOL_NAMES.get(key) or _snake(key)
                if isinstance(value, dict) and isinstance(value.get("args"), dict):
                    args = value["args"]
                break
    if not name:
        start = token.find("<xai:tool_name>")
        end = token.find("</xai:tool_name>")
        if start >= 0 and end > start:
            name = token[start + 15 : end].replace("<![CDATA[", "").replace("]]>", "").strip()
    return name, args


def _absolute(path: str, assets: str) -> str:
    return path if path.startswith(("http://", "https://")) else assets + path.lstrip("/")


def image(fields: dict[str, Any], assets: str, card_id: str = "") -> ImageOut | None:
    """The image an F8 card's chunk, an F9 frame or an F11 URL shows; None without a URL.
    `assets` (ending in "/") makes a relative path absolute."""
    path = fields.get("imageUrl") or fields.get("image_url") or fields.get("url")
    if not isinstance(path, str) or not path:
        return None
    progress = int(fields.get("progress") or 0)
    final = progress >= 100 or bool(fields.get("isFinal"))
    url = _absolute(path, assets)
    image_id = str(fields.get("imageUuid") or fields.get("assetId") or card_id or url)
    return ImageOut(
        url, progress=min(progress, 100), final=final, moderated=bool(fields.get("moderated")), id=image_id
    )


def video(fields: dict[str, Any], assets: str) -> VideoOut:
    """The state of the video an F10 frame reports."""
    url = fields.get("videoUrl") or ""
    thumb = fields.get("thumbnailImageUrl") or ""
    return VideoOut(
        int(fields.get("progress") or 0),
        url=_absolute(url, assets) if url else url,
        thumbnail_url=_absolute(thumb, assets) if thumb else thumb,
        post_id=str(fields.get("videoPostId") or ""),
        moderated=bool(fields.get("moderated")),
        video_id=str(fields.get("videoId") or ""),
    )
