"""Reading the statsig inputs out of grok.com's page and JavaScript (docs/protocol.md#statsig). Pure text
parsing; the fetching is `infra/upstream/statsig.py`'s.

* the seed: the base64 `content` of the meta whose name starts `grok-site` (the live name uses a
  horizontal bar U+2015 for the hyphen: every dash U+2010-U+2015 is read as `-`);
* the curves: `"curves":[[...],...]` inside the page's escaped RSC JSON, one list of 16 curves
  per group next to a `"css_class":"r-..."` (a single list of 64, or a nested 4 x 16, also reads);
* the indices: in one chunk under `/_next/static/chunks/`, the first four `(x[N],16)` give S, A,
  B, C; `[x[N]%4]` gives the group index when the chunk has it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any

from core.protocol.statsig import (
    CURVE_NUMBERS,
    CURVES_PER_GROUP,
    DEFAULT_GROUP_INDEX,
    GROUPS,
    SEED_BYTES,
    Curve,
)

_DASHES = str.maketrans({c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015"})
_META = re.compile(r"<meta\b[^>]*>", re.I)
_ATTR = re.compile(r"""([\w:\-\u2010-\u2015]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_CURVES = re.compile(r"""\\*"curves\\*"\s*:\s*(\[\s*\[[-\d.,\s\[\]]*\]\s*\])""")
_CHUNK = re.compile(r"""(/_next/static/chunks/[\w\-./~]+?\.js)""")
_INDEX = re.compile(r"\(\w\[(\d+)\],\s*16\)")
_GROUP = re.compile(r"\[\w\[(\d+)\]\s*%\s*4\]")


class PageError(ValueError):
    """The page or chunk does not carry what the signer needs (the message says what)."""


def parse_seed(html: str) -> bytes:
    """The 48 seed bytes of the `grok-site-verification` meta."""
    for tag in _META.findall(html):
        attrs = {m[0].lower().translate(_DASHES): m[1] or m[2] for m in _ATTR.findall(tag)}
        if attrs.get("name", "").translate(_DASHES).lower().startswith("grok-site"):
            content = attrs.get("content", "").strip()
            try:
                seed = base64.b64decode(content + "=" * (-len(content) % 4), validate=True)
            except (binascii.Error, ValueError):
                raise PageError("the grok-site-verification meta is not base64") from None
            if len(seed) != SEED_BYTES:
                raise PageError(f"the grok-site-verification seed is {len(seed)} bytes, not {SEED_BYTES}")
            return seed
    raise PageError("no grok-site-verification meta on the page")


def _numbers(text: str) -> list[Any]:
    value: list[Any] = json.loads(text)
    return value


def _curve(item: Any) -> Curve:
    if not isinstance(item, list) or len(item) != CURVE_NUMBERS:
        raise PageError(f"a curve is not {CURVE_NUMBERS} numbers")
    return tuple(int(n) for n in item)


def parse_curves(html: str) -> tuple[tuple[Curve, ...], ...]:
    """The 4 groups of 16 curves of the page's animation table."""
    found = [_numbers(m) for m in _CURVES.findall(html)]
    if not found:
        raise PageError("no animation curves on the page")
    try:
        if len(found) >= GROUPS and all(len(f) == CURVES_PER_GROUP for f in found[:GROUPS]):
            groups = [[_curve(c) for c in f] for f in found[:GROUPS]]
        elif len(found[0]) == GROUPS and all(
            isinstance(g, list) and g and isinstance(g[0], list) for g in found[0]
        ):
            groups = [[_curve(c) for c in g] for g in found[0]]
        elif len(found[0]) == GROUPS * CURVES_PER_GROUP:
            flat = [_curve(c) for c in found[0]]
            groups = [flat[i : i + CURVES_PER_GROUP] for i in range(0, len(flat), CURVES_PER_GROUP)]
        else:
            raise PageError("the animation table is not 4 groups of 16 curves")
    except (TypeError, ValueError) as exc:
        if isinstance(exc, PageError):
            raise
        raise PageError("unreadable animation curves") from None
    if len(groups) != GROUPS or any(len(g) != CURVES_PER_GROUP for g in groups):
        raise PageError("the animation table is not 4 groups of 16 curves")
    return tuple(tuple(g) for g in groups)


def chunk_paths(html: str, limit: int = 64) -> list[str]:
    """The page's JavaScript chunk paths, in page order, without repeats."""
    seen: dict[str, None] = {}
    for path in _CHUNK.findall(html):
        seen.setdefault(path, None)
        if len(seen) >= limit:
            break
    return list(seen)


def parse_indices(js: str) -> tuple[tuple[int, int, int, int], int] | None:
    """(S, A, B, C) and the group index from a chunk, or None if this chunk is not the one."""
    found = [int(n) for n in _INDEX.findall(js)[:4]]
    if len(found) < 4 or any(n >= SEED_BYTES for n in found):
        return None
    group = _GROUP.search(js)
    group_index = int(group.group(1)) if group and int(group.group(1)) < SEED_BYTES else DEFAULT_GROUP_INDEX
    return (found[0], found[1], found[2], found[3]), group_index


def build_id(chunk: str, curves: tuple[tuple[Curve, ...], ...], indices: tuple[int, ...]) -> str:
    """A name for the build: what a frontend deploy changes (the chunk, the curves, the indices)."""
    text = f"{chunk}|{curves}|{indices}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
