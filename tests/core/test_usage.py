"""Token estimates: `estimate_tokens` counts the pieces of the documented rule, exactly."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from core.transcode.usage import MESSAGE_OVERHEAD, _kind, estimate_tokens, estimate_usage

# The rule as documented in core/transcode/usage.py, matched piece by piece.
CJK = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
PIECES = re.compile(CJK + r"|[^\W\d_]+|\d{1,3}|[^\w\s]")


def reference(text: str) -> int:
    count = 0
    for piece in PIECES.findall(text):
        count += 1
        if len(piece) > 6:
            count += (len(piece) - 1) // 6
    return count


# Every kind of character the rule tells apart, and the ones near its edges: "?" (which the fast
# path uses as a mark), "_", digits that are not ASCII or not decimal, kana that are not
# letters, letters after CJK, surrogates.
ALPHABET = (
    "abcdefgXYZ 0123456789 _ ?!.,-'\"\n\t\r\x00\x1c\x7f"
    "éñßΩжЯ ٣²½ —“”…•\u00a0\u2028 😀🌊 中文字漢 ひらがなカタカナ ・ー゛ 한국어 ﬀ \ud800"
)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=80))
def test_same_count_as_the_rule_on_mixed_text(text: str) -> None:
    assert estimate_tokens(text) == reference(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_same_count_as_the_rule_on_any_text(text: str) -> None:
    assert estimate_tokens(text) == reference(text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(["tide", "internationalization", "a", "1234567", "é", "—", "中", "?", " ", "\n"]),
        max_size=60,
    )
)
def test_same_count_as_the_rule_on_words(words: list[str]) -> None:
    text = "".join(words)
    assert estimate_tokens(text) == reference(text)


def test_examples() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("A tide is water.") == 5
    assert estimate_tokens("internationalization") == 4  # 20 letters: ceil(20 / 6)
    assert estimate_tokens("1234567") == 3  # 123 456 7
    assert estimate_tokens("中文abc") == 3
    assert estimate_tokens("abc中文") == 1  # CJK inside a word stays in it
    assert estimate_tokens("snake_case?!") == 4


def test_cjk_range_has_no_digits_or_spaces() -> None:
    """`_kind` treats a CJK-range character as a letter or a piece of its own, nothing else."""
    ranges = [(0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF)]
    for low, high in ranges:
        for code in range(low, high + 1):
            assert _kind(chr(code)) in "cp"
            assert not re.match(r"[\d\s_]", chr(code))


def test_usage_adds_overhead_and_attachments() -> None:
    usage = estimate_usage("hello there", "A tide is water.", "hmm", attachments=2)
    assert usage.prompt_tokens == 2 + MESSAGE_OVERHEAD + 512
    assert usage.completion_tokens == 5 + 1
    assert usage.reasoning_tokens == 1
