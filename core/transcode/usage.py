"""Token estimates without a tokenizer download (the upstream reports no usage).

An approximation of o200k-style BPE counts: words are one token per ~6 characters, each
punctuation mark or symbol is one token, and CJK / kana / hangul characters are about one token
each. Within ~15% of tiktoken on English prose; documented as an estimate in docs/chat.md.

The rule is `_PIECES`: each piece is one token, and a letter piece longer than six characters
one more per further six, so ceil(n / 6) for n letters; digits come in pieces of up to three.
Matching the pieces costs ~45 µs for a 200-token answer, so `estimate_tokens` gets the same number
from C-speed string operations instead: every character becomes its kind (`_kind`), runs of
letters and of digits are cut into blocks of six and three with `replace`, and `count` counts
where the blocks start. A CJK letter is a piece of its own at the start of a word but not inside
one (`abc中` is one piece), which kinds cannot tell: text with one, or mostly not ASCII (where
the kinds would cost more than the pieces), is still counted piece by piece.
"""

from __future__ import annotations

import re
from itertools import chain

from core.events import Usage

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_PIECES = re.compile(
    rf"[{_CJK}]"  # one per CJK character
    r"|[^\W\d_]+"  # letters
    r"|\d{1,3}"  # digits come in groups of up to three
    r"|[^\w\s]",  # punctuation and symbols
)
MESSAGE_OVERHEAD = 4

_KIND = re.compile(rf"([{_CJK}])|([^\W\d_])|(\d)|([^\w\s])")  # the alternatives of _PIECES, one char
_LETTER = re.compile(r"[^\W\d_]")


def _kind(char: str) -> str:
    """What `_PIECES` makes of one character.

    `a` letter, `d` digit, `p` a piece of its own that ends any word or number (punctuation,
    symbols, and the few kana / hangul code points that are not letters), `c` a CJK letter,
    and a space for what is in no piece (white space, `_`).
    """
    match = _KIND.match(char)
    if match is None:
        return " "
    if match.lastindex == 1:
        return "c" if _LETTER.match(char) else "p"
    return "adp"[(match.lastindex or 2) - 2]


class _Kinds(dict[int, str]):
    """`str.translate` table: code point -> kind; ASCII up front, the rest as met (bounded)."""

    def __missing__(self, code: int) -> str:
        kind = _kind(chr(code))
        if len(self) < 8192:
            self[code] = kind
        return kind


_KINDS = _Kinds((code, _kind(chr(code))) for code in range(128))
# Bytes of kinds -> letters only, and digits only.
_LETTERS = bytes.maketrans(b"adpc", b"a   ")
_DIGITS = bytes.maketrans(b"adpc", b" d  ")
# ASCII bytes -> kinds; in _MARKED, "?" stays: encode("ascii", "replace") put it for a non-ASCII char.
_ASCII_KINDS = "".join(_KINDS[code] for code in range(128)).encode("ascii") + b" " * 128
_MARKED = _ASCII_KINDS[:63] + b"?" + _ASCII_KINDS[64:]
_ASCII = bytes(range(128))


def _kinds(text: str) -> bytes | None:
    """One kind per character of `text`; None when it has a CJK letter or is mostly not ASCII."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_KINDS)
    # The non-ASCII characters, in order, and their kinds.
    wide = text.encode("utf-8", "surrogatepass").translate(None, _ASCII).decode("utf-8", "surrogatepass")
    if len(wide) * 4 > len(text):  # a lookup per character would cost more than the pieces
        return None
    wide_kinds = wide.translate(_KINDS)
    if "c" in wide_kinds:
        return None
    # "?" and "!" are both a piece of their own; then a "?" marks where a non-ASCII character was.
    marked = text.replace("?", "!").encode("ascii", "replace").translate(_MARKED)
    first = wide_kinds[0]
    if wide_kinds.count(first) == len(wide_kinds):
        return marked.replace(b"?", first.encode("ascii"))
    parts = marked.decode("ascii").split("?")
    return ("".join(chain.from_iterable(zip(parts, wide_kinds, strict=False))) + parts[-1]).encode("ascii")


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    kinds = _kinds(text)
    if kinds is None:
        pieces = _PIECES.findall(text)
        count = len(pieces)  # one each, plus one per further 6 characters of a long word
        for piece in pieces:
            if len(piece) > 6:
                count += (len(piece) - 1) // 6
        return count
    # A run of n letters is ceil(n / 6) pieces: cut into "a " blocks of six, count where runs start.
    letters = b" " + kinds.translate(_LETTERS).replace(b"aaaaaa", b"a ")
    count = letters.count(b" a") + kinds.count(b"p")
    if b"d" in kinds:  # and a run of n digits ceil(n / 3)
        count += (b" " + kinds.translate(_DIGITS).replace(b"ddd", b"d ")).count(b" d")
    return count


def estimate_usage(prompt: str, completion: str, reasoning: str = "", *, attachments: int = 0) -> Usage:
    """Usage of one exchange; each attachment counts a flat 256 tokens (images are not read)."""
    prompt_tokens = estimate_tokens(prompt) + MESSAGE_OVERHEAD + 256 * attachments
    reasoning_tokens = estimate_tokens(reasoning)
    return Usage(prompt_tokens, estimate_tokens(completion) + reasoning_tokens, reasoning_tokens)
