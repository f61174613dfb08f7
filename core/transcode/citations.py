"""Where each citation sits in the answer text, for the dialects that annotate spans.

The decoder writes a citation into the text as the mark `[[n]](url)` and emits its `Citation`
event right after the text that carries it; marks come in text order. So only the last piece of
text and where it starts need keeping: each mark is found in that piece, after the one before.
"""

from __future__ import annotations

from core.events import Citation


def mark(citation: Citation) -> str:
    return f"[[{citation.index}]]({citation.url})"


class CitationSpans:
    """Feed each piece of answer text as it goes out (`add`); `span(citation)` gives the
    (start, end) of its mark in the whole text, or None if the last piece does not hold it."""

    __slots__ = ("_base", "_cursor", "_last")

    def __init__(self) -> None:
        self._base = 0  # where the last piece starts
        self._last = ""
        self._cursor = 0  # in the last piece: after the mark found before

    def add(self, text: str) -> None:
        self._base += len(self._last)
        self._last = text
        self._cursor = 0

    def span(self, citation: Citation) -> tuple[int, int] | None:
        cue = mark(citation)
        at = self._last.find(cue, self._cursor)
        if at < 0:
            return None
        self._cursor = at + len(cue)
        return self._base + at, self._base + self._cursor
