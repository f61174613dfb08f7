"""`x-statsig-id` values: the two [v2] decoy shapes (protocol §2.5), fresh per call."""

from __future__ import annotations

import base64
import re

from infra.upstream.statsig import statsig_id

SHAPES = (
    re.compile(r"e:TypeError: Cannot read properties of null \(reading 'children\['[a-z0-9]{5}'\]'\)"),
    re.compile(r"e:TypeError: Cannot read properties of undefined \(reading '[a-z]{10}'\)"),
)


def test_values_take_both_shapes_and_vary() -> None:
    seen = [0, 0]
    values = {statsig_id() for _ in range(400)}
    for value in values:
        message = base64.b64decode(value, validate=True).decode()
        matched = [bool(shape.fullmatch(message)) for shape in SHAPES]
        assert any(matched), message
        seen[matched.index(True)] += 1
    assert all(seen)  # both shapes occur
    assert len(values) > 390  # random words: repeats are rare
