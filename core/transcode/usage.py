"""Token estimates without a tokenizer download (the upstream reports no usage).

An approximation of o200k-style BPE counts: words are one token per ~6 characters, each
punctuation mark or symbol is one token, and CJK / kana / hangul characters are about one token
each. Within ~15% of tiktoken on English prose; documented as an estimate in docs/chat.md.
"""

from __future__ import annotations

import re

from core.events import Usage

_PIECES = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"  # one per CJK character
    r"|[^\W\d_]+"  # letters
    r"|\d{1,3}"  # digits come in groups of up to three
    r"|[^\w\s]",  # punctuation and symbols
)
MESSAGE_OVERHEAD = 4


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    pieces = _PIECES.findall(text)
    count = len(pieces)  # one each, plus one per further 6 characters of a long word
    for piece in pieces:
        if len(piece) > 6:
            count += (len(piece) - 1) // 6
    return count


def estimate_usage(prompt: str, completion: str, reasoning: str = "", *, attachments: int = 0) -> Usage:
    """Usage of one exchange; each attachment counts a flat 256 tokens (images are not read)."""
    prompt_tokens = estimate_tokens(prompt) + MESSAGE_OVERHEAD + 256 * attachments
    reasoning_tokens = estimate_tokens(reasoning)
    return Usage(prompt_tokens, estimate_tokens(completion) + reasoning_tokens, reasoning_tokens)
