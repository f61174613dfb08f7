"""The signed `x-statsig-id` against the vectors published by other implementations."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest

from core.protocol.statsig import (
    StatsigError,
    StatsigInputs,
    counter,
    cubic_bezier,
    curve_hex,
    decode,
    fingerprint,
    js_radix,
    sign,
    sign_number,
    usable,
    verify,
)

VECTOR_CURVES = tuple(
    tuple((10 + g, 20, 30, 210, 220, 230, 120 + c, 80, 100, 160, 200) for c in range(16)) for g in range(4)
)


def test_vector_1_full_value() -> None:
    inputs = StatsigInputs(bytes(range(48)), VECTOR_CURVES, (2, 1, 20, 19))
    hex_ = fingerprint(inputs)
    assert hex_ == "b141e10028f5c28f5c28f60028f5c28f5c28f6100"
    value = sign_number("POST", "/rest/app-chat/conversations/new", inputs.seed, hex_, 123456, 37)
    assert value == (
        "JSUkJyYhICMiLSwvLikoKyo1NDc2MTAzMj08Pz45ODs6BQQHBgEAAwINDA8OCQgLCmXHJCV1hLcfDtt06UKgboUW0R8EJg"
    )
    assert len(value) == 94 and len(base64.b64decode(value + "==")) == 70


def test_vector_2_hex_and_assembly() -> None:
    # A JS Math.round(10.5) = 11 case: t = 3*5*7 = 105, so currentTime = 110 (Python's round says 100).
    seed = bytes([0, 0, 3, 5, 7, *range(5, 48)])
    curve = (219, 4, 240, 196, 212, 140, 153, 210, 204, 247, 242)
    assert curve_hex(curve, 110) == "db8ee10147ae147ae147b0147ae147ae147b100"
    groups = tuple(tuple(curve if (g, c) == (0, 1) else (0,) * 11 for c in range(16)) for g in range(4))
    # seed[5] = 5 -> group 1 with the default group index; an index pointing at a 0 picks group 0.
    inputs = StatsigInputs(seed, groups, (1, 2, 3, 4), group_index=0)
    assert seed[1] % 16 == 0  # so S = 1 would pick curve 0; the vector chose curve 1 directly
    value = sign_number("POST", "/rest/x", seed, "db8ee10147ae147ae147b0147ae147ae147b100", 42000000, 99)
    assert value == (
        "Y2NjYGZkZmVka2ppaG9ubWxzcnFwd3Z1dHt6eXh/fn18Q0JBQEdGRURLSklIT05NTOO942FVpSTMZ29NGYcuCxeTOirDYA"
    )
    assert fingerprint(inputs) != ""


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.5, "0.8"),
        (0.1, "0.1999999999999a"),
        (0.01, "0.028f5c28f5c28f6"),
        (-0.28, "-0.47ae147ae147b"),
        (255.0, "ff"),
        (1.0, "1"),
        (0.0, "0"),
        (219.0, "db"),
        (0.99, "0.fd70a3d70a3d7"),
    ],
)
def test_js_radix_16_matches_v8(value: float, text: str) -> None:
    assert js_radix(value) == text


def test_js_radix_16_on_350_values_node_printed() -> None:
    # Printed by node (V8) for rounded values in [-1, 1] and [0, 255], the range HEX is built from.
    table = json.loads((Path(__file__).parent / "data" / "js_radix16.json").read_text())
    assert [js_radix(float(v)) for v, _ in table] == [text for _, text in table]


def test_cubic_bezier_matches_css_endpoints_and_linear() -> None:
    assert cubic_bezier(0.25, 0.25, 0.75, 0.75, 0.3) == pytest.approx(0.3, abs=1e-6)
    assert cubic_bezier(0.42, 0, 0.58, 1, 0.5) == pytest.approx(0.5, abs=1e-6)  # ease-in-out is symmetric
    assert cubic_bezier(0.42, 0, 1, 1, 0.5) == pytest.approx(0.3153, abs=1e-3)  # ease-in
    assert cubic_bezier(0.1, -0.6, 0.2, 0, 0.0) == 0.0 and cubic_bezier(0.1, -0.6, 0.2, 0, 1.0) == 1.0


def test_sign_and_verify_round_trip_and_rejections() -> None:
    rng = random.Random(3)
    curves = tuple(tuple(tuple(rng.randrange(256) for _ in range(11)) for _ in range(16)) for _ in range(4))
    other = tuple(tuple(tuple(rng.randrange(256) for _ in range(11)) for _ in range(16)) for _ in range(4))
    seed = bytes(rng.randrange(256) for _ in range(48))
    inputs = StatsigInputs(seed, curves, (2, 1, 20, 19), build_id="b1")
    hex_ = fingerprint(inputs)
    now = 1_800_000_000.0
    value = sign("POST", "/rest/app-chat/conversations/new?x=1", inputs, hex_, now)
    assert usable(value) and decode(value)[1:49] == inputs.seed
    path = "/rest/app-chat/conversations/new"
    assert verify(value, "POST", path, curves, (2, 1, 20, 19), now) is None
    assert verify(value, "POST", "/rest/rate-limits", curves, (2, 1, 20, 19), now) is not None
    assert verify(value, "POST", path, other, (2, 1, 20, 19), now) is not None  # a new build's curves
    assert verify(value, "POST", path, curves, (2, 1, 20, 19), now + 3600) == "timestamp outside the window"
    assert verify("ZTpUeXBlRXJyb3I=", "POST", path, curves, (2, 1, 20, 19), now) is not None
    assert counter(now) == int(now) - 1682924400


def test_inputs_round_trip_and_validation() -> None:
    inputs = StatsigInputs(bytes(range(48)), VECTOR_CURVES, (2, 1, 20, 19), build_id="abc")
    assert StatsigInputs.from_dict(inputs.as_dict()) == inputs
    with pytest.raises(StatsigError):
        StatsigInputs(bytes(47), VECTOR_CURVES, (2, 1, 20, 19))
    with pytest.raises(StatsigError):
        StatsigInputs.from_dict({"seed": "!!", "curves": [], "indices": []})
