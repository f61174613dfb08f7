"""The signed `x-statsig-id` (docs/protocol.md#statsig): 70 bytes, base64 without padding.

Pure: the inputs (the page's seed, the animation curves, the build's seed indices) come in as a
`StatsigInputs`; `fingerprint` turns them into the HEX string once, `sign` builds one value per
request (a SHA-256 and 70 XORs: a few microseconds). `verify` is the check grok.com is reported
to make (the simulator applies it): the hash and the HEX must agree with the embedded seed.

Layout of the plain bytes: key, seed (48), number (4, little-endian), SHA-256(input)[:16], 0x03;
every byte after the key is XORed with it. `number` = unix seconds - 1682924400.
"""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass

EPOCH = 1682924400
SEED_BYTES = 48
VALUE_BYTES = 70
SALT = "obfiowerehiring"
ANIMATION_MS = 4096
GROUPS, CURVES_PER_GROUP, CURVE_NUMBERS = 4, 16, 11
DEFAULT_GROUP_INDEX = 5  # group = seed[5] % 4 in every build seen so far

Curve = tuple[int, ...]  # 11 bytes: start rgb, end rgb, rotation, 4 cubic-Bezier control bytes


class StatsigError(ValueError):
    """Inputs that cannot produce a valid value (a seed of the wrong size, missing curves)."""


@dataclass(frozen=True, slots=True)
class StatsigInputs:
    """What one page load and its build give: the seed, 4 x 16 curves and the seed indices.

    `indices` is (S, A, B, C): the curve index and the three time indices of the build's chunk.
    `build_id` names the build (chunk and curves) so a cache can tell a rotation from a refresh.
    """

    seed: bytes
    curves: tuple[tuple[Curve, ...], ...]
    indices: tuple[int, int, int, int]
    group_index: int = DEFAULT_GROUP_INDEX
    build_id: str = ""

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_BYTES:
            raise StatsigError(f"the seed must be {SEED_BYTES} bytes, got {len(self.seed)}")
        if len(self.curves) != GROUPS or any(len(g) != CURVES_PER_GROUP for g in self.curves):
            raise StatsigError(f"expected {GROUPS} groups of {CURVES_PER_GROUP} curves")
        if any(len(c) != CURVE_NUMBERS for g in self.curves for c in g):
            raise StatsigError(f"every curve has {CURVE_NUMBERS} numbers")
        if any(not 0 <= i < SEED_BYTES for i in (*self.indices, self.group_index)):
            raise StatsigError("seed indices must lie within the seed")

    def as_dict(self) -> dict[str, object]:
        return {
            "seed": base64.b64encode(self.seed).decode("ascii"),
            "curves": [[list(c) for c in g] for g in self.curves],
            "indices": list(self.indices),
            "group_index": self.group_index,
            "build_id": self.build_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> StatsigInputs:
        """The inverse of `as_dict`; raises StatsigError on anything malformed."""
        try:
            seed = base64.b64decode(str(data["seed"]), validate=True)
            curves = tuple(tuple(tuple(int(n) for n in c) for c in g) for g in data["curves"])  # type: ignore[attr-defined]
            a, b, c, d = (int(i) for i in data["indices"])  # type: ignore[attr-defined]
            group = int(data.get("group_index", DEFAULT_GROUP_INDEX))  # type: ignore[call-overload]
            return cls(seed, curves, (a, b, c, d), group, str(data.get("build_id", "")))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, StatsigError):
                raise
            raise StatsigError(f"malformed statsig inputs: {exc}") from None


# --- JavaScript numerics ------------------------------------------------------------------------


def js_round(value: float) -> float:
    """`Math.round`: halves go up (Python's `round` goes to even)."""
    return float(math.floor(value + 0.5))


def round2(value: float) -> float:
    return js_round(value * 100) / 100


_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def js_radix(value: float, radix: int = 16) -> str:
    """`Number.prototype.toString(radix)` as V8 writes it, fractions included (shortest digits
    that read back to the same double, rounding the last one half to even)."""
    if value != value:
        return "NaN"
    if value == 0:
        return "0"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    negative = value < 0
    value = abs(value)
    integer = math.floor(value)
    fraction = value - integer
    delta = max(0.5 * (math.nextafter(value, math.inf) - value), math.nextafter(0.0, 1.0))
    digits: list[str] = []
    if fraction >= delta:
        while True:
            fraction *= radix
            delta *= radix
            digit = int(fraction)
            digits.append(_DIGITS[digit])
            fraction -= digit
            if (fraction > 0.5 or (fraction == 0.5 and digit & 1)) and fraction + delta > 1:
                # Round up, carrying into the digits already written (and the integer part).
                while True:
                    if not digits:
                        integer += 1
                        break
                    last = _DIGITS.index(digits.pop())
                    if last + 1 < radix:
                        digits.append(_DIGITS[last + 1])
                        break
                break
            if fraction < delta:
                break
    whole = ""
    n = int(integer)
    while True:
        n, rem = divmod(n, radix)
        whole = _DIGITS[rem] + whole
        if n == 0:
            break
    text = whole + ("." + "".join(digits) if digits else "")
    return "-" + text if negative else text


def cubic_bezier(x1: float, y1: float, x2: float, y2: float, progress: float) -> float:
    """The easing value at `progress` of CSS `cubic-bezier(x1, y1, x2, y2)`: solve x(t) = progress
    (Newton, then bisection, as browsers do), return y(t)."""
    if progress <= 0:
        return 0.0
    if progress >= 1:
        return 1.0
    cx = 3 * x1
    bx = 3 * (x2 - x1) - cx
    ax = 1 - cx - bx
    cy = 3 * y1
    by = 3 * (y2 - y1) - cy
    ay = 1 - cy - by

    def x_at(t: float) -> float:
        return ((ax * t + bx) * t + cx) * t

    t = progress
    for _ in range(8):
        error = x_at(t) - progress
        if abs(error) < 1e-7:
            return ((ay * t + by) * t + cy) * t
        slope = (3 * ax * t + 2 * bx) * t + cx
        if abs(slope) < 1e-6:
            break
        t -= error / slope
    lo, hi, t = 0.0, 1.0, progress
    while lo < hi:
        x = x_at(t)
        if abs(x - progress) < 1e-7:
            break
        if progress > x:
            lo = t
        else:
            hi = t
        t = (hi - lo) / 2 + lo
        if hi - lo < 1e-12:
            break
    return ((ay * t + by) * t + cy) * t


# --- the fingerprint and the value --------------------------------------------------------------


def _scale(value: int, low: float, high: float) -> float:
    return round2(value * (high - low) / 255 + low)


def curve_hex(curve: Sequence[int], current_time: float) -> str:
    """The HEX of one curve at `current_time` ms into the 4096 ms animation (docs/protocol.md#statsig)."""
    x1, y1 = _scale(curve[7], 0, 1), _scale(curve[8], -1, 1)
    x2, y2 = _scale(curve[9], 0, 1), _scale(curve[10], -1, 1)
    eased = cubic_bezier(x1, y1, x2, y2, current_time / ANIMATION_MS)
    colour = [js_round(curve[i] + (curve[i + 3] - curve[i]) * eased) for i in range(3)]
    angle = math.radians(math.floor(curve[6] * 300 / 255 + 60) * eased)
    cos, sin = math.cos(angle), math.sin(angle)
    numbers = [*colour, cos, sin, -sin, cos, 0.0, 0.0]
    text = "".join(js_radix(round2(n)) for n in numbers)
    return text.replace(".", "").replace("-", "")


def fingerprint(inputs: StatsigInputs) -> str:
    """HEX for the inputs' seed: pick the curve and the time from the seed, render it."""
    seed = inputs.seed
    s, a, b, c = inputs.indices
    group = inputs.curves[seed[inputs.group_index] % GROUPS]
    curve = group[seed[s] % CURVES_PER_GROUP]
    t = (seed[a] % 16) * (seed[b] % 16) * (seed[c] % 16)
    return curve_hex(curve, js_round(t / 10) * 10)


def counter(now: float) -> int:
    return (math.floor(now) - EPOCH) & 0xFFFFFFFF


def _digest(method: str, path: str, number: int, hex_: str) -> bytes:
    return hashlib.sha256(f"{method}!{path}!{number}{SALT}{hex_}".encode()).digest()[:16]


def sign_number(method: str, path: str, seed: bytes, hex_: str, number: int, key: int) -> str:
    """The value for an explicit counter and key (what the published vectors pin)."""
    plain = seed + struct.pack("<I", number) + _digest(method.upper(), path, number, hex_) + b"\x03"
    out = bytes((key, *(byte ^ key for byte in plain)))
    return base64.b64encode(out).decode("ascii").rstrip("=")


def sign(method: str, path: str, inputs: StatsigInputs, hex_: str, now: float, key: int | None = None) -> str:
    """A fresh value for one request at `now`; `hex_` is `fingerprint(inputs)`, computed once."""
    path = path.split("?", 1)[0]
    return sign_number(
        method, path, inputs.seed, hex_, counter(now), secrets.randbelow(256) if key is None else key
    )


def decode(value: str) -> bytes | None:
    """The 70 plain bytes (key removed from every byte but the first) or None if it is not one."""
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except ValueError:
        return None
    if len(raw) != VALUE_BYTES:
        return None
    key = raw[0]
    return bytes((key, *(byte ^ key for byte in raw[1:])))


def usable(value: str) -> bool:
    """A value may be sent only if it decodes to exactly 70 bytes (docs/protocol.md#statsig)."""
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except ValueError:
        return False
    return len(raw) == VALUE_BYTES


def verify(
    value: str,
    method: str,
    path: str,
    curves: tuple[tuple[Curve, ...], ...],
    indices: tuple[int, int, int, int],
    now: float,
    *,
    window: float = 300.0,
    group_index: int = DEFAULT_GROUP_INDEX,
) -> str | None:
    """Why `value` is not valid for this request under this build, or None when it is."""
    plain = decode(value)
    if plain is None:
        return "not 70 bytes of base64"
    if plain[69] != 3:
        return "bad trailer byte"
    seed = plain[1:49]
    (number,) = struct.unpack("<I", plain[49:53])
    if abs(number - counter(now)) > window:
        return "timestamp outside the window"
    hex_ = fingerprint(StatsigInputs(seed, curves, indices, group_index))
    if plain[53:69] != _digest(method.upper(), path.split("?", 1)[0], number, hex_):
        return "signature does not match the build"
    return None
