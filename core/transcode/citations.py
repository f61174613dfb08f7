"""Where each citation sits in the answer text, for the dialects that annotate spans.

The decoder writes a citation into the text as the mark `[[n]](url)` and then emits a `Citation`
event for it; marks come in text order, so each one is found after the one before.
"""

from __future__ import annotations

from core.events import Citation


def mark(citation: Citation) -> str:
    return f"[[{citation.index}]]({citation.url})"


class CitationSpans:
    """Feed the answer text with `add`; `span(citation)` gives the (start, end) of its mark."""

    __slots__ = ("_cursor", "_pieces")

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._cursor = 0

    def add(self, text: str) -> None:
        self._pieces.append(text)

    def text(self) -> str:
        full = "".join(self._pieces)
        self._pieces = [full]
        return full

    def span(self, citation: Citation) -> tuple[int, int] | None:
        full = self.text()
        text = mark(citation)
        at = full.find(text, self._cursor)
        if at < 0:
            return None
        self._cursor = at + len(text)
        return at, self._cursor
