"""The simulator's own check of a signed `x-statsig-id` (docs/protocol.md#statsig), written apart from the
gateway's signer on purpose (the simulator shares no code with the gateway): exact fractions for
the radix-16 rendering, bisection for the Bezier solve. Both must agree with the published vectors.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import math
from fractions import Fraction

EPOCH = 1682924400


def _round(x: float) -> float:
    return float(math.floor(x + 0.5))


def _hex16(x: float) -> str:
    """JavaScript `x.toString(16)`: the fewest hex digits that lie within half an ulp of x."""
    sign = "-" if x < 0 else ""
    x = abs(x)
    whole = int(x)
    frac = Fraction(x) - whole
    head = f"{whole:x}"
    if frac == 0:
        return sign + head if x else "0"
    half_ulp = Fraction(math.nextafter(x, math.inf) - x) / 2
    for n in range(1, 60):
        scaled = frac * 16**n
        m = math.floor(scaled + Fraction(1, 2))
        if abs(Fraction(m, 16**n) - frac) < half_ulp or (n >= 52):
            if m == 16**n:
                return sign + f"{whole + 1:x}"
            return sign + head + "." + f"{m:0{n}x}".rstrip("0")
    raise AssertionError("unreachable")


def _ease(x1: float, y1: float, x2: float, y2: float, p: float) -> float:
    def bez(a: float, b: float, t: float) -> float:
        return 3 * a * (1 - t) ** 2 * t + 3 * b * (1 - t) * t**2 + t**3

    if p <= 0 or p >= 1:
        return max(0.0, min(1.0, p))
    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if bez(x1, x2, mid) < p:
            lo = mid
        else:
            hi = mid
    return bez(y1, y2, (lo + hi) / 2)


@functools.lru_cache(maxsize=4096)  # a client reuses one page's seed for many values
def expected_hex(
    seed: bytes, curves: tuple[tuple[tuple[int, ...], ...], ...], indices: tuple[int, ...], group: int
) -> str:
    s, a, b, c = indices
    curve = curves[seed[group] % 4][seed[s] % 16]
    t = (seed[a] % 16) * (seed[b] % 16) * (seed[c] % 16)
    p = _round(t / 10) * 10 / 4096

    def scaled(v: int, low: float, high: float) -> float:
        return _round((v * (high - low) / 255 + low) * 100) / 100

    e = _ease(
        scaled(curve[7], 0, 1), scaled(curve[8], -1, 1), scaled(curve[9], 0, 1), scaled(curve[10], -1, 1), p
    )
    rgb = [_round(curve[i] + (curve[i + 3] - curve[i]) * e) for i in range(3)]
    rad = math.floor(curve[6] * 300 / 255 + 60) * e * math.pi / 180
    parts = [*rgb, math.cos(rad), math.sin(rad), -math.sin(rad), math.cos(rad), 0.0, 0.0]
    return "".join(_hex16(_round(v * 100) / 100) for v in parts).replace(".", "").replace("-", "")


def check(
    value: str,
    method: str,
    path: str,
    curves: tuple[tuple[tuple[int, ...], ...], ...],
    indices: tuple[int, int, int, int],
    group: int,
    now: float,
    window: float,
) -> str | None:
    """Why `value` fails, or None when grok.com would take it."""
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return "not base64"
    if len(raw) != 70:
        return "not 70 bytes"
    key = raw[0]
    plain = bytes(b ^ key for b in raw[1:])
    if plain[68] != 3:
        return "bad trailer byte"
    seed, number = plain[:48], int.from_bytes(plain[48:52], "little")
    if abs(number - (int(now) - EPOCH)) > window:
        return "timestamp outside the window"
    text = f"{method}!{path}!{number}obfiowerehiring{expected_hex(seed, curves, indices, group)}"
    if hashlib.sha256(text.encode()).digest()[:16] != plain[52:68]:
        return "signature does not match the build"
    return None
