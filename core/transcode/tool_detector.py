"""The streaming tool-call detector: `<tool_calls>` markup (and its variants) found in an answer
as it streams, even split across tokens (see core/transcode/tools.py for the whole picture).

Text before a call is released as it comes; only a tail that may still become markup (`<too`, a
backtick) is held. Markup that turns out not to be a call is released as text. Calls are made
`ToolCall`s by the `resolve` function the detector is given (`ToolSpec.resolve`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from core.events import TextDelta, ToolCall
from core.transcode.tool_markup import OPEN_TAG, TAGS, RawCall, fenced_calls, parse_element

_OPENER = re.compile(r"<(?:tool_calls|tool_call|function_calls|function_call|invoke)(?=[\s>/])|```", re.I)
_PREFIXES = tuple("<" + tag for tag in TAGS)
_FENCE_INFOS = ("", "json", "json5", "jsonc", "tool_call", "tool_calls", "tool_code", "xml")
MAX_CAPTURE = 1024 * 1024  # markup that never closes is given back as text past this size
_GIVE_UP_AFTER_CLOSE = 4096  # chars past a first closing tag before a block that won't parse is text


def _prefix_tail(text: str) -> int:
    """Where the tail that may still grow into an opener starts (len(text) when none may)."""
    ticks = len(text) - len(text.rstrip("`"))
    if ticks:
        return len(text) - min(ticks, 2)
    at = text.rfind("<", max(0, len(text) - 16))
    if at >= 0:
        tail = text[at:].lower()
        if any(p.startswith(tail) for p in _PREFIXES):
            return at
    return len(text)


class ToolDetector:
    """`feed(text)` -> text to show and `ToolCall`s found; `flush()` at the end of the answer."""

    __slots__ = ("_buf", "_closed_at", "_held", "_mode", "_resolve", "_ws", "calls", "hold_all", "limit")

    def __init__(
        self,
        resolve: Callable[[RawCall], ToolCall | None],
        *,
        hold_all: bool = False,
        limit: int | None = None,
    ) -> None:
        self._resolve = resolve
        self.hold_all = hold_all
        self.limit = limit
        self._buf = ""
        self._mode = "scan"  # or "tag", "fence": _buf starts with the opener
        self._held: list[str] = []
        self._ws = ""  # whitespace just before a captured opener: dropped if a call follows
        self._closed_at = -1
        self.calls = 0

    def feed(self, text: str) -> list[TextDelta | ToolCall]:
        out: list[TextDelta | ToolCall] = []
        if text:
            self._buf += text
            self._scan(out)
        return out

    def flush(self) -> list[TextDelta | ToolCall]:
        out: list[TextDelta | ToolCall] = []
        if self._mode == "tag":
            for suffix in _CLOSERS:
                found = parse_element(self._buf + suffix, 0, self._resolve)
                if found is not None:
                    self._emit(found[0], out)
                    self._buf = ""
                    break
        elif self._mode == "fence":
            newline = self._buf.find("\n")
            calls = fenced_calls(self._buf[newline + 1 :], self._resolve) if newline >= 0 else None
            if calls:
                self._emit(calls, out)
                self._buf = ""
        self._release(self._ws + self._buf, out)
        self._buf = self._ws = ""
        self._mode = "scan"
        if self._held:
            out.append(TextDelta("".join(self._held)))
            self._held = []
        return out

    def abort(self) -> list[TextDelta]:
        """The answer broke off: the text held back as answer goes out, but markup captured so
        far (a call cut in the middle, or a tail that may be the start of one) never does."""
        out: list[TextDelta] = []
        if self._held and not self.calls:
            out.append(TextDelta("".join(self._held)))
        self._held = []
        self._buf = self._ws = ""
        self._mode = "scan"
        return out

    # -- internals

    def _release(self, text: str, out: list[TextDelta | ToolCall]) -> None:
        if not text or self.calls:
            return  # after a call, text is speculation about its result
        if self.hold_all:
            self._held.append(text)
        elif out and isinstance(out[-1], TextDelta):
            out[-1] = TextDelta(out[-1].text + text)
        else:
            out.append(TextDelta(text))

    def _emit(self, calls: list[ToolCall], out: list[TextDelta | ToolCall]) -> None:
        if self.limit is not None:
            calls = calls[: max(0, self.limit - self.calls)]
        if self._held and not self.calls:
            out.append(TextDelta("".join(self._held)))
            self._held = []
        out.extend(calls)
        self.calls += len(calls)
        self._ws = ""

    def _scan(self, out: list[TextDelta | ToolCall]) -> None:
        while self._buf:
            if self._mode == "scan":
                match = _OPENER.search(self._buf)
                if match is None:
                    keep = _prefix_tail(self._buf)
                    while keep and self._buf[keep - 1].isspace():
                        keep -= 1  # trailing whitespace waits: it goes if a call follows
                    self._release(self._buf[:keep], out)
                    self._buf = self._buf[keep:]
                    return
                before = self._buf[: match.start()]
                text = before.rstrip()
                self._release(text, out)
                self._ws = before[len(text) :]
                self._buf = self._buf[match.start() :]
                self._mode = "fence" if self._buf.startswith("`") else "tag"
                self._closed_at = -1
            elif not (self._tag(out) if self._mode == "tag" else self._fence(out)):
                return

    def _give_back(self, upto: int, out: list[TextDelta | ToolCall]) -> bool:
        self._release(self._ws + self._buf[:upto], out)
        self._ws = ""
        self._buf = self._buf[upto:]
        self._mode = "scan"
        return True

    def _tag(self, out: list[TextDelta | ToolCall]) -> bool:
        """One step on a captured tag; False when more text is needed."""
        buf = self._buf
        opening = OPEN_TAG.match(buf)
        if opening is None:
            # the opener's `<name` is here but its `>` is not, or never comes
            bad = ">" in buf or "<" in buf[1:] or len(buf) > 512
            return self._give_back(1, out) if bad else False
        body = buf[opening.end() :].lstrip()
        if body and body[0] not in "<{[" and not opening.group(2).rstrip().endswith("/"):
            return self._give_back(opening.end(), out)  # prose that mentions a tag
        found = parse_element(buf, 0, self._resolve)
        if found is not None:
            self._emit(found[0], out)
            self._buf = buf[found[1] :]
            self._mode = "scan"
            return True
        tag = opening.group(1).lower()
        if self._closed_at < 0:
            close = re.search(rf"</{tag}\s*>", buf[opening.end() :], re.I)
            if close is not None:
                self._closed_at = opening.end() + close.end()
        if self._closed_at >= 0 and len(buf) - self._closed_at > _GIVE_UP_AFTER_CLOSE:
            return self._give_back(self._closed_at, out)
        if len(buf) > MAX_CAPTURE:
            return self._give_back(len(buf), out)
        return False

    def _fence(self, out: list[TextDelta | ToolCall]) -> bool:
        buf = self._buf
        newline = buf.find("\n")
        info = buf[3 : newline if newline >= 0 else len(buf)].strip().lower()
        if newline < 0:
            # the info string is still arriving: wait while it may become one we read
            return False if any(known.startswith(info) for known in _FENCE_INFOS) else self._give_back(3, out)
        if info not in _FENCE_INFOS:
            return self._give_back(3, out)
        body = buf[newline + 1 :].lstrip()
        if not body:
            return False
        if body[0] not in "{[<":
            return self._give_back(newline + 1, out)
        close = buf.find("```", newline + 1)
        if close < 0:
            return self._give_back(len(buf), out) if len(buf) > MAX_CAPTURE else False
        calls = fenced_calls(buf[newline + 1 : close], self._resolve)
        if calls:
            self._emit(calls, out)
            self._buf = buf[close + 3 :]
            self._mode = "scan"
            return True
        return self._give_back(close + 3, out)


# Closing tags a model may leave off at the very end of its answer.
_CLOSERS = (
    "",
    "</tool_call></tool_calls>",
    "</parameters></tool_call></tool_calls>",
    "}</parameters></tool_call></tool_calls>",
    "</parameters></tool_call>",
    "</tool_calls>",
    "</tool_call>",
    "</invoke></function_calls>",
    "</parameter></invoke></function_calls>",
    "</function_calls>",
    "</invoke>",
    "</function_call>",
)
