"""The simulator's independent statsig check agrees with the published vectors and the node-printed
radix-16 table, and with the gateway's signer (two implementations, one truth)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from core.protocol.statsig import StatsigInputs, fingerprint, sign
from infra.sim.build import Build
from infra.sim.statsig_check import _hex16, check, expected_hex

CURVES = tuple(
    tuple((10 + g, 20, 30, 210, 220, 230, 120 + c, 80, 100, 160, 200) for c in range(16)) for g in range(4)
)


def test_vectors_and_radix_table() -> None:
    assert (
        expected_hex(bytes(range(48)), CURVES, (2, 1, 20, 19), 5)
        == "b141e10028f5c28f5c28f60028f5c28f5c28f6100"
    )
    table = json.loads((Path(__file__).parents[1] / "core" / "data" / "js_radix16.json").read_text())
    assert [_hex16(float(v)) for v, _ in table] == [t for _, t in table]


def test_the_check_takes_the_signers_values_and_refuses_a_rotated_build() -> None:
    build = Build()
    seed = bytes(range(7, 55))
    inputs = StatsigInputs(seed, build.curves, build.indices, build.group_index)
    now = time.time()
    value = sign("POST", "/rest/rate-limits", inputs, fingerprint(inputs), now)
    assert check(value, "POST", "/rest/rate-limits", build.curves, build.indices, 5, now, 300) is None
    assert build.check(value, "POST", "/rest/app-chat/conversations/new", now, 300) is not None
    assert Build().check(value, "POST", "/rest/rate-limits", now, 300) is not None
    assert build.check(value, "POST", "/rest/rate-limits", now + 900, 300) == "timestamp outside the window"
