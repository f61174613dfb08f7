"""`<grok:render>` tags in answer text (docs/protocol.md F8): citations, searched images, generated files.

Cards arrive before the token whose tag names them; a tag may also be split across tokens, so
the renderer holds back an unfinished tag (or a `<` that may start one) until it completes.
Citations become numbered markdown links `[[n]](url)`, numbered by first appearance of the URL;
searched images become markdown images; generated-image tags are dropped (the image itself
comes as an `ImageOut`); unknown tags are dropped. How the rest of an answer reads to a client
(images, server tool lines) is the dialects' (`core.transcode.answer`).
"""

from __future__ import annotations

import re
from typing import Any

from core.events import Citation

OPEN = "<grok:render"
_TAG = re.compile(r"<grok:render\b([^>]*?)(?:/>|>(.*?)</grok:render>)", re.S)
_ATTR = re.compile(r'(\w+)="([^"]*)"')
# Longest prefix of OPEN that a chunk may end with, and still become a tag.
_MAX_HOLD = 64 * 1024


class Renderer:
    """Incremental renderer: `feed(text)` returns what can be shown now; `flush()` the rest."""

    __slots__ = ("_cards", "_citations", "_pending", "_titles")

    def __init__(self) -> None:
        self._cards: dict[str, dict[str, Any]] = {}
        self._citations: dict[str, int] = {}
        self._titles: dict[str, str] = {}
        self._pending = ""

    def add_card(self, card: dict[str, Any]) -> None:
        card_id = card.get("id")
        if isinstance(card_id, str) and card_id:
            known = self._cards.get(card_id)
            self._cards[card_id] = {**known, **card} if known else card

    def add_title(self, url: str, title: str) -> None:
        """A search result's title, used for the citation of the same URL."""
        if url and title:
            self._titles.setdefault(url, title)

    @property
    def holding(self) -> bool:
        """Part of a tag is held back: the next text must go through `feed`."""
        return bool(self._pending)

    def feed(self, text: str, citations: list[Citation]) -> str:
        if self._pending:
            text = self._pending + text
            self._pending = ""
        elif "<" not in text:
            return text
        out: list[str] = []
        pos = 0
        while True:
            start = text.find("<", pos)
            if start < 0:
                out.append(text[pos:])
                break
            out.append(text[pos:start])
            rest = text[start:]
            if not rest.startswith(OPEN):
                if OPEN.startswith(rest):  # "<gro" at the very end: may become a tag
                    self._pending = rest
                    break
                out.append("<")
                pos = start + 1
                continue
            match = _TAG.match(text, start)
            if match is None:
                if len(rest) > _MAX_HOLD:  # never closes: give the text back rather than hold forever
                    out.append(rest)
                else:
                    self._pending = rest
                break
            out.append(self._render(match.group(1), citations))
            pos = match.end()
        return "".join(out)

    def flush(self) -> str:
        """Text held back at the end of the answer (an unclosed tag is dropped)."""
        pending, self._pending = self._pending, ""
        return "" if pending.startswith(OPEN) else pending

    def cite(self, url: str, citations: list[Citation]) -> str:
        """The inline mark of a citation of `url`, numbered by the URL's first appearance."""
        index = self._citations.get(url)
        if index is None:
            index = self._citations[url] = len(self._citations) + 1
        citations.append(Citation(index, url, self._titles.get(url, "")))  # one per mark, for annotations
        return f"[[{index}]]({url})"

    def _render(self, attrs: str, citations: list[Citation]) -> str:
        fields = dict(_ATTR.findall(attrs))
        card = self._cards.get(fields.get("card_id", ""), {})
        kind = fields.get("type") or card.get("type", "")
        if kind == "render_inline_citation":
            url = card.get("url")
            if not isinstance(url, str) or not url:
                return ""
            return self.cite(url, citations)
        if kind == "render_searched_image":
            image = card.get("image")
            if not isinstance(image, dict):
                return ""
            src = image.get("thumbnail") or image.get("original")
            if not src:
                return ""
            title = str(image.get("title") or "image").replace("]", "")
            link = image.get("link")
            return f"[![{title}]({src})]({link})" if link else f"![{title}]({src})"
        return ""
