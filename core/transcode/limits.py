"""Stop sequences and an output-token limit, enforced on the visible answer for every dialect.

The upstream has neither, so the service runs the answer through `Limits`: text is cut at the
first stop sequence (finish `stop`, with the sequence) or at the token limit (finish `length`),
after which the service stops reading upstream. A stop sequence split across deltas is caught by
holding back the last `len(longest) - 1` characters until more text or the end arrives.
"""

from __future__ import annotations

from core.events import Event, Finish, TextDelta
from core.transcode.usage import _PIECES, estimate_tokens


class Limits:
    __slots__ = ("_held", "_hold", "_max", "_stops", "_used", "done")

    def __init__(self, stop: tuple[str, ...] = (), max_tokens: int | None = None) -> None:
        self._stops = stop
        self._hold = max((len(s) for s in stop), default=1) - 1
        self._held = ""
        self._max = max_tokens
        self._used = 0
        self.done = False

    @property
    def active(self) -> bool:
        return bool(self._stops) or self._max is not None

    def apply(self, events: list[Event]) -> list[Event]:
        out: list[Event] = []
        for event in events:
            if self.done:
                break
            if isinstance(event, TextDelta):
                self._text(event.text, out)
            elif isinstance(event, Finish):
                if self._held:
                    self._emit(self._held, out)
                    self._held = ""
                if not self.done:
                    out.append(event)
                    self.done = True
            else:
                out.append(event)
        return out

    def _text(self, text: str, out: list[Event]) -> None:
        if self._stops:
            text = self._held + text
            self._held = ""
            cut = -1
            found = ""
            for stop in self._stops:
                at = text.find(stop)
                if at >= 0 and (cut < 0 or at < cut):
                    cut, found = at, stop
            if cut >= 0:
                self._emit(text[:cut], out)
                if not self.done:
                    out.append(Finish("stop", found))
                    self.done = True
                return
            if self._hold:
                text, self._held = text[: -self._hold], text[-self._hold :]
        self._emit(text, out)

    def _emit(self, text: str, out: list[Event]) -> None:
        if not text:
            return
        if self._max is None:
            out.append(TextDelta(text))
            return
        cost = estimate_tokens(text)
        if self._used + cost <= self._max:
            self._used += cost
            out.append(TextDelta(text))
            return
        room = self._max - self._used
        end = 0
        for match in _PIECES.finditer(text):
            if room <= 0:
                break
            room -= 1
            end = match.end()
        if end:
            out.append(TextDelta(text[:end]))
        out.append(Finish("length"))
        self.done = True
