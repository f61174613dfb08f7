"""Request metrics of this process, and their Prometheus exposition.

Recording is a few dictionary updates per request (no client library on the hot path: importing
prometheus_client costs more than the whole chat deployable's cold-start budget allows); the
`/metrics` route renders them with prometheus_client's own collectors and text format, together
with what the store says of the pool (accounts by state and tier, leases in flight, quota left).

Counters and histograms are per process, as with any Prometheus client: one local process or a
self-hosted server shows every request; on Lambda each request's figures also go to CloudWatch
as an EMF log line (`emf_line`), and the usage ledger counts requests across every instance.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)


class Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(BUCKETS, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        out, total = [], 0
        for bound, n in zip([*map(str, BUCKETS), "+Inf"], self.counts, strict=True):
            total += n
            out.append((bound, float(total)))
        return out


class Metrics:
    """This process's request figures, by route template, model and status."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.ttfb: dict[str, Histogram] = {}
        self.total: dict[str, Histogram] = {}
        self.overhead: dict[str, Histogram] = {}
        self.failures: dict[str, int] = {}

    def observe(
        self, route: str, model: str, status: int, ttfb: float, total: float, overhead: float, failure: str
    ) -> None:
        key = (route, model, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        for series, value in ((self.ttfb, ttfb), (self.total, total), (self.overhead, overhead)):
            histogram = series.get(route)
            if histogram is None:
                histogram = series[route] = Histogram()
            histogram.observe(value)
        if failure:
            self.failures[failure] = self.failures.get(failure, 0) + 1


METRICS = Metrics()  # per process: what a Prometheus client library would keep, and as safe to lose


def render(metrics: Metrics, pool: dict[str, Any]) -> bytes:
    """The Prometheus text exposition of `metrics` and the pool figures (see `pool_figures`)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    class Collector:
        def collect(self) -> Iterator[Any]:
            requests = CounterMetricFamily(
                "grokgate_requests",
                "Requests answered, by route, model and status.",
                labels=["route", "model", "status"],
            )
            for (route, model, status), n in sorted(metrics.requests.items()):
                requests.add_metric([route, model, status], n)
            yield requests
            for name, series, text in (
                ("grokgate_ttfb_seconds", metrics.ttfb, "Time to the first byte of the response."),
                ("grokgate_request_seconds", metrics.total, "Time to the end of the response."),
                (
                    "grokgate_overhead_seconds",
                    metrics.overhead,
                    "The gateway's own time to first byte, upstream wait excluded.",
                ),
            ):
                family = HistogramMetricFamily(name, text, labels=["route"])
                for route, histogram in sorted(series.items()):
                    family.add_metric([route], histogram.cumulative(), sum_value=histogram.sum)
                yield family
            failures = CounterMetricFamily(
                "grokgate_upstream_failures",
                "Upstream failures that ended an answer, by kind.",
                labels=["kind"],
            )
            for kind, n in sorted(metrics.failures.items()):
                failures.add_metric([kind], n)
            yield failures
            accounts = GaugeMetricFamily(
                "grokgate_accounts", "Accounts in the pool, by state and tier.", labels=["state", "tier"]
            )
            for (state, tier), n in sorted(pool.get("accounts", {}).items()):
                accounts.add_metric([state, tier], n)
            yield accounts
            yield GaugeMetricFamily(
                "grokgate_leases_in_flight", "Account leases held right now.", value=pool.get("in_flight", 0)
            )
            quota = GaugeMetricFamily(
                "grokgate_quota_remaining",
                "Quota left in the current windows of active accounts, by mode.",
                labels=["mode"],
            )
            for mode, n in sorted(pool.get("quota", {}).items()):
                quota.add_metric([mode], n)
            yield quota

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())  # type: ignore[arg-type]
    return bytes(generate_latest(registry))


def pool_figures(accounts: Sequence[Any], now: float) -> dict[str, Any]:
    """Accounts by (state, tier), leases in flight, and quota left per mode over active accounts."""
    by_state: dict[tuple[str, str], int] = {}
    quota: dict[str, int] = {}
    in_flight = 0
    for account in accounts:
        key = (account.status.value, account.tier.value)
        by_state[key] = by_state.get(key, 0) + 1
        in_flight += account.in_flight
        if account.status.value == "active":
            for mode, window in account.quotas.items():
                quota[mode] = quota.get(mode, 0) + window.current(now).remaining
    return {"accounts": by_state, "in_flight": in_flight, "quota": quota}


def emf_line(route: str, model: str, status: int, ttfb: float, total: float, overhead: float) -> str:
    """One request as a CloudWatch embedded-metric-format log line (Lambda turns it into metrics)."""
    return orjson.dumps(
        {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": "grokgate",
                        "Dimensions": [["route"], ["route", "status"]],
                        "Metrics": [
                            {"Name": "ttfb", "Unit": "Milliseconds"},
                            {"Name": "latency", "Unit": "Milliseconds"},
                            {"Name": "overhead", "Unit": "Milliseconds"},
                        ],
                    }
                ],
            },
            "route": route,
            "status": str(status),
            "model": model,
            "ttfb": round(ttfb * 1000, 3),
            "latency": round(total * 1000, 3),
            "overhead": round(overhead * 1000, 3),
        }
    ).decode()
