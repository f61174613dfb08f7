"""docs/protocol.md#errors: one fixture per known body, the outcome it leaves and the error a client sees."""

from __future__ import annotations

import pytest

from core.accounts import OutcomeKind
from core.errors import InvalidRequest, Overloaded, RateLimited, UpstreamError, UpstreamTimeout
from core.protocol.classify import Kind, classify_http, classify_inband, empty_stream, transport_failure

INVALID = b'{"code":16,"message":"Failed to look up session ID. [WKE=unauthenticated:invalid-credentials]","details":[]}'


@pytest.mark.parametrize(
    ("status", "body", "kind", "outcome", "retryable"),
    [
        (400, INVALID, Kind.EXPIRED, OutcomeKind.EXPIRED, True),
        (401, b"", Kind.EXPIRED, OutcomeKind.EXPIRED, True),
        (403, b'{"error":{"code":"blocked-user"}}', Kind.BLOCKED, OutcomeKind.BLOCKED, True),
        (403, b"<!DOCTYPE html><title>Just a moment...</title>", Kind.CHALLENGE, OutcomeKind.CHALLENGE, True),
        (403, b"", Kind.CHALLENGE, OutcomeKind.CHALLENGE, True),
        (403, b'{"error":"Request rejected by anti-bot rules."}', Kind.ANTI_BOT, OutcomeKind.CHALLENGE, True),
        (403, b'{"error":"content violates usage guidelines"}', Kind.POLICY, OutcomeKind.TRANSIENT, False),
        (403, b'{"error":"token expired"}', Kind.EXPIRED, OutcomeKind.EXPIRED, True),
        (429, b'{"error":"Too many requests"}', Kind.RATE_LIMITED, OutcomeKind.RATE_LIMITED, True),
        (429, b"subscription:free-usage-exhausted", Kind.USAGE_LIMIT, OutcomeKind.RATE_LIMITED, True),
        (502, b"bad gateway", Kind.TRANSIENT, OutcomeKind.TRANSIENT, True),
        (503, b"", Kind.LOAD_SHED, OutcomeKind.TRANSIENT, True),
        (504, b"", Kind.TIMEOUT, OutcomeKind.TRANSIENT, True),
        (404, b"not found", Kind.REJECTED, OutcomeKind.TRANSIENT, False),
    ],
)
def test_http_table(status: int, body: bytes, kind: Kind, outcome: OutcomeKind, retryable: bool) -> None:
    failure = classify_http(status, body)
    assert failure.kind is kind
    assert failure.retryable is retryable
    assert failure.outcome(1000.0, 900.0).kind is outcome
    assert failure.reason.startswith(f"HTTP {status}")


def test_429_cools_and_never_kills_and_keeps_the_reason() -> None:
    failure = classify_http(429, b'{"error":"rate limit for mode expert"}', retry_after=120)
    outcome = failure.outcome(1000.0, 900.0)
    assert outcome.kind is OutcomeKind.RATE_LIMITED
    assert outcome.cooling_until == 1120.0
    assert outcome.refund
    assert "rate limit for mode expert" in outcome.reason
    error = failure.to_error()
    assert isinstance(error, RateLimited) and error.headers["retry-after"] == "120"
    assert classify_http(429, b"").outcome(1000.0, 900.0).cooling_until == 1900.0


def test_challenge_page_reason_is_short() -> None:
    failure = classify_http(403, b"<html>" + b"x" * 5000 + b"Just a moment...</html>")
    assert failure.reason == "HTTP 403: Cloudflare challenge page"


def test_outcome_after_start_spends_the_unit() -> None:
    assert not transport_failure("reset").outcome(0, 900, started=True).refund
    assert transport_failure("reset").outcome(0, 900).refund


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"message": "Request rejected by anti-bot rules.", "code": 7, "details": []}, Kind.ANTI_BOT),
        ({"message": "You've reached your usage limit. Please try again later."}, Kind.USAGE_LIMIT),
        ({"message": "slow down", "code": 8}, Kind.RATE_LIMITED),
        ({"error": {"message": "The service is overloaded, try again later"}}, Kind.LOAD_SHED),
        ("something odd", Kind.TRANSIENT),
    ],
)
def test_inband_table(error: object, kind: Kind) -> None:
    assert classify_inband(error).kind is kind


def test_client_errors_by_kind() -> None:
    assert isinstance(classify_http(401, b"").to_error(), UpstreamError)
    assert isinstance(classify_http(503, b"").to_error(), Overloaded)
    assert isinstance(classify_http(504, b"").to_error(), UpstreamTimeout)
    assert isinstance(classify_http(403, b"content policy").to_error(), InvalidRequest)
    assert empty_stream().to_error().code == "empty_response"
