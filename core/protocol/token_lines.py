"""The frame decoder's fast path: runs of token lines read by template, many at a time.

Nearly every line of a chat stream is an answer or thinking token that differs from the one
before only in its token. Such a line teaches `TokenLines` its bytes around the token (a
template, `_learn`); a run of lines made of those bytes around string literals is decoded with
one parse of the literals (`_bulk`, `_tokens`), and handed to the decoder as tokens. Anything
else, and any doubt, goes to the decoder one line at a time, so the events are always those the
line-by-line path gives.

The decoder calls `TokenLines.read(decoder, data, start, end, out)` for the complete lines of a
read, and `TokenLines.line(decoder, line, out)` for one line it joined from pieces. The decoder is
passed on each call (not kept), so a decoder and its reader form no reference cycle.
"""

from __future__ import annotations

from collections.abc import Set
from io import BytesIO
from itertools import repeat
from operator import and_, getitem, le
from typing import Any, NamedTuple, Protocol, cast

import orjson

from core.events import Event

_SENTINEL = b'"\\u0000"'  # the token "\x00" as orjson writes it
_BULK = 3  # shorter runs of a template are decoded line by line


class LineDecoder(Protocol):
    """What the fast path needs of the decoder it reads for."""

    done: bool

    @property
    def holding(self) -> bool:
        """An answer tag is open: answer tokens must reach the decoder one by one."""
        ...

    def decode_line(self, line: bytes, out: list[Event]) -> dict[str, Any] | None:
        """One line the line-by-line way; the frame, when the line was one bare JSON object."""
        ...

    def emit_tokens(self, tokens: list[str], frame: Template, out: list[Event]) -> None:
        """The events of these tokens, each on the frame `frame` was learned from (an answer
        token, or a thinking token of rollout `frame.agent`)."""
        ...


class Template(NamedTuple):
    """The bytes of a token line around its token: every line `prefix + literal + suffix` is the
    same frame as the one it was learned from, with only the token changed (see `_learn`)."""

    prefix: bytes  # up to and including the token's opening quote
    suffix: bytes  # from the token's closing quote to the end of the line
    sep: bytes  # suffix + newline + prefix: what lies between two tokens in a run of such lines
    end: bytes  # suffix + newline
    thinking: bool
    agent: Any  # the rolloutId of a thinking template


class TokenLines:
    """The templates of one stream and the reading of lines with them."""

    __slots__ = ("_busy", "_hits", "_learning", "_learns", "_misses", "_templates")

    def __init__(self, busy_keys: Set[str]) -> None:
        self._busy = busy_keys  # response keys that make events: a thinking frame with one is no template
        self._templates: list[Template] = []  # most recent first
        self._learning = True
        self._learns = 0
        self._misses = 0
        self._hits = 0

    def read(self, decoder: LineDecoder, data: bytes, pos: int, end: int, out: list[Event]) -> None:
        """Decode the complete lines data[pos:end] (each ending in a newline) for `decoder`; a run
        of lines of one template at once. Stops when the decoder is done."""
        find = data.find
        while pos < end:
            if not self._templates:  # line by line, until a template is learned
                while pos < end:
                    nl = find(b"\n", pos)
                    line = data[pos:nl]
                    pos = nl + 1
                    frame = decoder.decode_line(line, out)  # a few lines per stream, until a template
                    if decoder.done:
                        return
                    if frame is not None and self._learning:
                        self._learn(frame, line)
                        if self._templates:
                            break
                continue
            nl = find(b"\n", pos)
            if nl == end - 1:  # one line (a token written on its own): no run to read at once
                self._one(decoder, data[pos:nl], out)
                return
            tpl = None
            for candidate in self._templates:
                if data.startswith(candidate.prefix, pos):
                    tpl = candidate
                    break
            last = data.rfind(tpl.end, pos, end) if tpl is not None else -1
            if tpl is None or last < 0:
                self._one(decoder, data[pos:nl], out)
                pos = nl + 1
            else:
                stop = last + len(tpl.end)
                self._bulk(decoder, data, pos, stop, tpl, out)
                pos = stop
            if decoder.done:
                return

    def _bulk(
        self, decoder: LineDecoder, chunk: bytes, pos: int, stop: int, tpl: Template, out: list[Event]
    ) -> None:
        """The lines chunk[pos:stop], from one of `tpl` to the last one in this read: as one run,
        or as several among other lines.

        The lines are read at memchr speed (`BytesIO.readlines`, no copy of the chunk) and their
        literals sliced; `prefix + sep.join(literals) + end` equal to the bytes read proves every
        line is one of `tpl` (no literal holds a newline). One comparison, no pass that scans the
        read byte by byte.
        """
        prefix, end = tpl.prefix, tpl.end
        reader = BytesIO(chunk)
        if pos:
            reader.seek(pos)
        lines = reader.readlines(stop - pos)
        literals = cast("list[bytes]", list(map(getitem, lines, repeat(slice(len(prefix), -len(end))))))
        expected = tpl.sep.join(literals)
        if len(expected) == stop - pos - len(prefix) - len(end) and chunk.startswith(
            expected, pos + len(prefix)
        ):
            if len(literals) < _BULK or not self._tokens(decoder, literals, tpl, out):
                self._each(decoder, [line[:-1] for line in lines], out)
            return
        # Other lines among them: find the lines of `tpl` one by one, at C speed.
        suffix = tpl.suffix
        lines = chunk[pos:stop].split(b"\n")
        lines.pop()
        literals = cast("list[bytes]", list(map(getitem, lines, repeat(slice(len(prefix), -len(suffix))))))
        good = list(
            map(
                and_,
                map(
                    and_,
                    map(bytes.startswith, lines, repeat(prefix)),
                    map(bytes.endswith, lines, repeat(suffix)),
                ),
                map(le, repeat(len(prefix) + len(suffix)), map(len, lines)),
            )
        )
        good.append(False)
        at = 0
        while at < len(lines) and not decoder.done:
            if good[at]:
                stop = good.index(False, at)
                if stop - at < _BULK or not self._tokens(decoder, literals[at:stop], tpl, out):
                    self._each(decoder, lines[at:stop], out)
                at = stop
            else:
                self._one(decoder, lines[at], out)
                at += 1

    def _each(self, decoder: LineDecoder, lines: list[bytes], out: list[Event]) -> None:
        for line in lines:
            self._one(decoder, line, out)
            if decoder.done:
                return

    def _tokens(self, decoder: LineDecoder, literals: list[bytes], tpl: Template, out: list[Event]) -> bool:
        """The tokens of a run of lines of `tpl`, decoded in one parse.

        Each literal must be a whole JSON string body on its own: no unescaped quote, no escape
        left open at its end. Then the joined literals parse as a list of exactly these strings.
        Otherwise (or on an empty token, which is no token: an empty token frame is not a token
        frame) False, and the lines are decoded one by one.

        Plain ASCII literals with no quote and no backslash are each a whole string body, and so
        is their concatenation: it parses as the concatenated tokens, all the events need unless
        a tag may be in them (then the decoder takes the tokens one by one).
        """
        if not all(literals):
            return False  # an empty token is no token
        cat = b"".join(literals)
        if cat.isascii() and b"\\" not in cat and b'"' not in cat:
            try:
                text = orjson.loads(b'"' + cat + b'"')
            except orjson.JSONDecodeError:
                return False  # a control character: the lines one by one
            if tpl.thinking or ("<" not in text and not decoder.holding):
                self._hits += len(literals)
                decoder.emit_tokens([text], tpl, out)
                return True
        joined = b'","'.join(literals)
        if b"\\" in joined:
            unpaired = joined.replace(b"\\\\", b"")  # what is left of a backslash starts an escape
            if b'\\","' in unpaired or unpaired.endswith(b"\\"):
                return False
            quotes = unpaired.replace(b'\\"', b"").count(b'"')
        else:
            quotes = joined.count(b'"')
        if quotes != 2 * (len(literals) - 1):
            return False
        try:
            tokens = orjson.loads(b'["' + joined + b'"]')
        except orjson.JSONDecodeError:
            return False
        if len(tokens) != len(literals) or not all(tokens):
            return False
        self._hits += len(tokens)
        decoder.emit_tokens(tokens, tpl, out)
        return True

    def _one(self, decoder: LineDecoder, line: bytes, out: list[Event]) -> None:
        """One line (without its newline), which may be of a template."""
        for tpl in self._templates:
            if (
                len(line) >= len(tpl.prefix) + len(tpl.suffix)
                and line.startswith(tpl.prefix)
                and line.endswith(tpl.suffix)
            ):
                literal = line[len(tpl.prefix) - 1 : len(line) - len(tpl.suffix) + 1]
                try:
                    token = orjson.loads(literal)
                except orjson.JSONDecodeError:
                    continue  # not one JSON string there: not this template's line
                if token:
                    self._hits += 1
                    decoder.emit_tokens([token], tpl, out)
                    return
                break  # an empty token is no token
        frame = decoder.decode_line(line, out)
        if frame is not None and self._learning and not decoder.done:
            self._learn(frame, line)

    line = _one  # what the decoder calls for a line it joined from pieces

    def _learn(self, frame: dict[str, Any], line: bytes) -> None:
        """Keep the bytes around the token of a plain answer or thinking token line.

        The frame is dumped again with the token replaced by a sentinel; the bytes before and
        after it are the template. A later line made of those bytes around another string literal
        is the same frame with another token, so it gives the same events: the token as answer
        text, or as reasoning of the same rollout. A thinking frame qualifies only when nothing
        else in it makes events (no busy key). Learning stops (and the templates go) when they do
        not pay: after eight lines not in orjson's form (spaces, other escaping), or when
        templates are learned but hardly reused (a field that changes on every line).
        """
        result = frame.get("result")
        if type(result) is not dict:
            return
        response = result.get("response")
        if type(response) is not dict:
            return
        token = response.get("token")
        if not token or type(token) is not str:
            return
        tag = response.get("messageTag")
        agent: Any = ""
        if (not tag or tag == "final") and not response.get("isThinking"):
            thinking = False
        elif (
            tag == "tool_usage_card"
            or tag == "raw_function_result"
            or not response.get("isThinking")
            or response.get("isSoftStop")
            or not self._busy.isdisjoint(response)
        ):
            return
        else:
            thinking = True
            agent = response.get("rolloutId") or ""
        try:
            dumped = orjson.dumps({**frame, "result": {**result, "response": {**response, "token": "\x00"}}})
        except orjson.JSONEncodeError:
            return
        at = dumped.find(_SENTINEL)
        if at < 0 or dumped.rfind(_SENTINEL) != at:
            return
        prefix, suffix = dumped[: at + 1], dumped[at + len(_SENTINEL) - 1 :]
        if b"\\" in prefix or b"\\" in suffix:
            return
        if not (line.startswith(prefix) and line.endswith(suffix)):
            self._misses += 1
            if self._misses >= 8:  # the upstream writes JSON some other way: no fast path
                self._learning = False
            return
        if self._learns >= 8 and self._hits < 4 * self._learns:  # templates are not reused
            self._learning = False
            self._templates.clear()
            return
        sep = suffix + b"\n" + prefix
        self._templates.insert(0, Template(prefix, suffix, sep, suffix + b"\n", thinking, agent))
        del self._templates[4:]
        self._learns += 1
