"""What one request did, gathered on its way through: the edge starts it, the route names the
model, the answer reports its account, usage and upstream wait; the edge then writes it to the
usage ledger, the metrics and the request log (`functions._access.finish`)."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import Scope


class Meter:
    __slots__ = ("answer", "first_byte", "key_id", "model", "started", "status", "upstream_wait")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first_byte = 0.0
        self.status = 0
        self.model = ""
        self.key_id = ""
        self.answer: Any = None  # the opened chat answer (a Turn), if the route served one
        self.upstream_wait = 0.0  # seconds spent waiting on the upstream before the first byte

    def response_started(self, status: int) -> bytes:
        """Note the first byte; returns the `x-grokgate-overhead-ms` value: the time to it, less
        the upstream wait (the gateway's own part)."""
        self.first_byte = time.perf_counter()
        self.status = status
        return f"{self.overhead_ms():.2f}".encode()

    def overhead_ms(self) -> float:
        return max(0.0, (self.first_byte - self.started - self.upstream_wait) * 1000)


def meter_of(scope: Scope) -> Meter:
    state = scope.setdefault("state", {})
    meter = state.get("meter")
    if meter is None:
        meter = state["meter"] = Meter()
    return meter  # type: ignore[no-any-return]
