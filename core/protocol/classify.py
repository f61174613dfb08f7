"""Upstream failures: what a status, a body or an in-band error means, for the account and the client.

Two steps (docs/protocol.md#errors). An ordered chain of checks (`classify_http`, `classify_inband`:
the status, then markers in the body) picks a kind; the table below (`_RULES`) says what a kind
means: the account outcome, whether another account may succeed, whether the reserved quota unit
goes back, and the error the client sees if nothing else works. The upstream's own words are kept
(cut, and never with a cookie in them) as the account's reason.

    kind            account outcome   retry elsewhere  refund  client error
    expired         EXPIRED           yes              yes     502 upstream_error / account_expired
    blocked         BLOCKED           yes              yes     502 upstream_error / account_blocked
    challenge       CHALLENGE         yes              yes     502 upstream_error / upstream_challenge
    anti_bot        CHALLENGE         yes              yes     502 upstream_error / anti_bot_rejected
    rate_limited    RATE_LIMITED      yes              yes     429 rate_limit_exceeded / upstream_rate_limited
    usage_limit     RATE_LIMITED      yes              yes     429 rate_limit_exceeded / usage_limit_reached
    load_shed       TRANSIENT         yes              yes     503 overloaded / upstream_overloaded
    transient       TRANSIENT         yes              yes     502 upstream_error / upstream_error
    timeout         TRANSIENT         yes              yes     504 timeout / upstream_timeout
    empty           TRANSIENT         yes              yes     502 upstream_error / empty_response
    policy          TRANSIENT         no               yes     400 invalid_request_error / content_policy_violation
    rejected        TRANSIENT         no               yes     502 upstream_error / upstream_rejected
    truncated       TRANSIENT         no               no      502 upstream_error / stream_interrupted

A 429 (or an in-band usage limit) only ever cools an account down; it never expires or blocks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.accounts import Outcome, OutcomeKind
from core.errors import (
    GatewayError,
    InvalidRequest,
    Overloaded,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)

REASON_MAX = 300


class Kind(StrEnum):
    EXPIRED = "expired"
    BLOCKED = "blocked"
    CHALLENGE = "challenge"
    ANTI_BOT = "anti_bot"
    RATE_LIMITED = "rate_limited"
    USAGE_LIMIT = "usage_limit"
    LOAD_SHED = "load_shed"
    TRANSIENT = "transient"
    TIMEOUT = "timeout"
    EMPTY = "empty"
    POLICY = "policy"
    REJECTED = "rejected"
    TRUNCATED = "truncated"


@dataclass(frozen=True, slots=True)
class _Rule:
    outcome: OutcomeKind
    retryable: bool
    refund: bool
    error: type[GatewayError]
    code: str
    message: str


_RULES: dict[Kind, _Rule] = {
    Kind.EXPIRED: _Rule(
        OutcomeKind.EXPIRED,
        True,
        True,
        UpstreamError,
        "account_expired",
        "The upstream rejected the account's credentials.",
    ),
    Kind.BLOCKED: _Rule(
        OutcomeKind.BLOCKED, True, True, UpstreamError, "account_blocked", "The upstream blocked the account."
    ),
    Kind.CHALLENGE: _Rule(
        OutcomeKind.CHALLENGE,
        True,
        True,
        UpstreamError,
        "upstream_challenge",
        "The upstream answered with a Cloudflare challenge; clearance is needed.",
    ),
    Kind.ANTI_BOT: _Rule(
        OutcomeKind.CHALLENGE,
        True,
        True,
        UpstreamError,
        "anti_bot_rejected",
        "The upstream's anti-bot rules rejected the request.",
    ),
    Kind.RATE_LIMITED: _Rule(
        OutcomeKind.RATE_LIMITED,
        True,
        True,
        RateLimited,
        "upstream_rate_limited",
        "The upstream rate-limited the account.",
    ),
    Kind.USAGE_LIMIT: _Rule(
        OutcomeKind.RATE_LIMITED,
        True,
        True,
        RateLimited,
        "usage_limit_reached",
        "The account reached its upstream usage limit.",
    ),
    Kind.LOAD_SHED: _Rule(
        OutcomeKind.TRANSIENT, True, True, Overloaded, "upstream_overloaded", "The upstream is overloaded."
    ),
    Kind.TRANSIENT: _Rule(
        OutcomeKind.TRANSIENT, True, True, UpstreamError, "upstream_error", "The upstream failed."
    ),
    Kind.TIMEOUT: _Rule(
        OutcomeKind.TRANSIENT,
        True,
        True,
        UpstreamTimeout,
        "upstream_timeout",
        "The upstream did not answer in time.",
    ),
    Kind.EMPTY: _Rule(
        OutcomeKind.TRANSIENT,
        True,
        True,
        UpstreamError,
        "empty_response",
        "The upstream ended the stream without an answer.",
    ),
    Kind.POLICY: _Rule(
        OutcomeKind.TRANSIENT,
        False,
        True,
        InvalidRequest,
        "content_policy_violation",
        "The upstream refused the request under its content policy.",
    ),
    Kind.REJECTED: _Rule(
        OutcomeKind.TRANSIENT,
        False,
        True,
        UpstreamError,
        "upstream_rejected",
        "The upstream rejected the request.",
    ),
    Kind.TRUNCATED: _Rule(
        OutcomeKind.TRANSIENT,
        False,
        False,
        UpstreamError,
        "stream_interrupted",
        "The upstream stream broke off before the answer finished.",
    ),
}


class UpstreamFailure(Exception):
    """A classified upstream failure: raised by the Upstream adapter, carried by `Fault` events.

    `reason` is the upstream's own words (status and a cut body), safe to store and show.
    """

    __slots__ = ("cooldown", "kind", "reason", "status")

    def __init__(self, kind: Kind, reason: str, *, status: int = 0, cooldown: float | None = None) -> None:
        super().__init__(f"{kind.value}: {reason}")
        self.kind = kind
        self.reason = reason[:REASON_MAX]
        self.status = status
        self.cooldown = cooldown  # seconds the upstream asked for (Retry-After), if any

    @property
    def retryable(self) -> bool:
        """Another account may succeed where this one failed."""
        return _RULES[self.kind].retryable

    @property
    def refund(self) -> bool:
        return _RULES[self.kind].refund

    def outcome(self, now: float, default_cooldown: float, *, started: bool = False) -> Outcome:
        """The account outcome; after the answer started the unit was spent, so no refund."""
        rule = _RULES[self.kind]
        cooling = 0.0
        if rule.outcome is OutcomeKind.RATE_LIMITED:
            cooling = now + (self.cooldown if self.cooldown is not None else default_cooldown)
        return Outcome(
            rule.outcome, reason=self.reason, cooling_until=cooling, refund=rule.refund and not started
        )

    def to_error(self, default_cooldown: float | None = None) -> GatewayError:
        """The error a client sees when this failure is the last word (the reason included)."""
        rule = _RULES[self.kind]
        message = f"{rule.message} Upstream said: {self.reason}" if self.reason else rule.message
        headers = {}
        cooldown = self.cooldown if self.cooldown is not None else default_cooldown
        if cooldown is not None and rule.error is RateLimited:
            headers["retry-after"] = str(max(1, int(cooldown)))
        return rule.error(message, code=rule.code, headers=headers)


# --- HTTP status + body -------------------------------------------------------------------------

_CHALLENGE = re.compile(
    r"just a moment|challenge-platform|__cf_chl|cf-chl-|cf-challenge|cloudflare|<html", re.I
)
_INVALID_CREDENTIALS = re.compile(r"invalid-credentials|failed to look up session id", re.I)
_BLOCKED = re.compile(r"blocked-user|user is blocked|account (?:is |has been )?(?:suspended|banned)", re.I)
_SAFETY = re.compile(
    r"content violates usage guidelines|safety_check_type_|request rejected by policy|content policy|"
    r"content moderation",
    re.I,
)
_AUTH_WORDS = re.compile(r"authentication|unauthori[sz]ed|invalid token|token expired", re.I)
_DENIED = re.compile(r"access to the chat endpoint is denied", re.I)
# A stale build's statsig value is refused either way after a deploy (docs/protocol.md#statsig).
_ANTI_BOT = re.compile(r"anti-bot|anti bot|page is out of date", re.I)
_USAGE = re.compile(r"usage limit|usage quota|free-usage-exhausted|used all the included free usage", re.I)
_RATE = re.compile(r"too many requests|rate limit|rate_limit", re.I)
_LOAD = re.compile(r"overloaded|high demand|capacity|try again later|unavailable|load[ -]?shed", re.I)


def _excerpt(status: int, body: bytes | str) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    if _CHALLENGE.search(text) and "<" in text:
        text = "Cloudflare challenge page" if "just a moment" in text.lower() else "HTML page"
    return f"HTTP {status}: {text}"[:REASON_MAX] if status else text[:REASON_MAX]


def classify_http(status: int, body: bytes | str, retry_after: float | None = None) -> UpstreamFailure:
    """A non-200 answer of the chat or upload endpoint (docs/protocol.md#errors)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    reason = _excerpt(status, text)
    if status == 401:
        return UpstreamFailure(Kind.EXPIRED, reason, status=status)
    if status == 400 and _INVALID_CREDENTIALS.search(text):
        return UpstreamFailure(Kind.EXPIRED, reason, status=status)
    if status in (402, 429):
        kind = Kind.USAGE_LIMIT if _USAGE.search(text) else Kind.RATE_LIMITED
        return UpstreamFailure(kind, reason, status=status, cooldown=retry_after)
    if status == 403:
        if _BLOCKED.search(text) or _DENIED.search(text):
            return UpstreamFailure(Kind.BLOCKED, reason, status=status)
        if _SAFETY.search(text):
            return UpstreamFailure(Kind.POLICY, reason, status=status)
        if _ANTI_BOT.search(text):
            return UpstreamFailure(Kind.ANTI_BOT, reason, status=status)
        if _AUTH_WORDS.search(text):
            return UpstreamFailure(Kind.EXPIRED, reason, status=status)
        # A challenge page, or a bare 403 from the edge: the egress is at fault, not the account.
        return UpstreamFailure(Kind.CHALLENGE, reason, status=status)
    if status in (408, 504):
        return UpstreamFailure(Kind.TIMEOUT, reason, status=status)
    if status == 503 or (status >= 500 and _LOAD.search(text)):
        return UpstreamFailure(Kind.LOAD_SHED, reason, status=status, cooldown=retry_after)
    if status >= 500:
        return UpstreamFailure(Kind.TRANSIENT, reason, status=status)
    return UpstreamFailure(Kind.REJECTED, reason, status=status)


# --- In-band errors (F14) -----------------------------------------------------------------------


def _error_text(error: Any) -> tuple[str, Any]:
    if isinstance(error, str):
        return error, None
    if isinstance(error, dict):
        inner = error.get("error")
        if isinstance(inner, dict):
            return _error_text(inner)
        message = error.get("message") or error.get("error") or error.get("detail") or ""
        return (message if isinstance(message, str) else str(message)), error.get("code")
    return str(error), None


def classify_inband(error: Any) -> UpstreamFailure:
    """An error object inside an HTTP 200 stream: anti-bot, usage limit, load shed, or other."""
    message, code = _error_text(error)
    reason = f"in-band error{f' {code}' if code is not None else ''}: {message}".strip()
    if code == 7 or _ANTI_BOT.search(message):
        return UpstreamFailure(Kind.ANTI_BOT, reason)
    if _USAGE.search(message):
        return UpstreamFailure(Kind.USAGE_LIMIT, reason)
    if code == 8 or _RATE.search(message):
        return UpstreamFailure(Kind.RATE_LIMITED, reason)
    if _BLOCKED.search(message):
        return UpstreamFailure(Kind.BLOCKED, reason)
    if _INVALID_CREDENTIALS.search(message):
        return UpstreamFailure(Kind.EXPIRED, reason)
    if _SAFETY.search(message):
        return UpstreamFailure(Kind.POLICY, reason)
    if _LOAD.search(message):
        return UpstreamFailure(Kind.LOAD_SHED, reason)
    return UpstreamFailure(Kind.TRANSIENT, reason)


def transport_failure(message: str, *, timeout: bool = False) -> UpstreamFailure:
    """A connect error, reset or timeout: nothing to hold against the account."""
    return UpstreamFailure(Kind.TIMEOUT if timeout else Kind.TRANSIENT, message)


def empty_stream() -> UpstreamFailure:
    return UpstreamFailure(Kind.EMPTY, "the stream ended without any answer")


def truncated_stream(detail: str = "") -> UpstreamFailure:
    return UpstreamFailure(Kind.TRUNCATED, detail or "the stream ended before the answer finished")
