"""E10 `POST /rest/rate-limits`: one mode's quota window for one account (docs/protocol.md#quotas).

A small function rather than a method of the main upstream client, so quota upkeep (cron,
"refresh now") can use it without the chat machinery; it may be folded into `client.py` later.
It rides on the upstream client's `send` (egress, clearance, statsig, one recovery).
"""

from __future__ import annotations

from typing import Any

from core.accounts import Quota
from core.protocol.classify import UpstreamFailure, transport_failure
from infra.upstream.account_call import AccountCall

DEFAULT_WINDOW = 7200  # [v3]: windowSizeSeconds defaults to 7200 when missing


def parse_rate_limits(body: Any, now: float) -> Quota:
    """The window from an E10 answer; the upstream reports no reset time, so it is estimated."""
    if not isinstance(body, dict) or not isinstance(body.get("remainingQueries"), int):
        raise ValueError("rate-limits answer without remainingQueries")
    remaining = max(0, int(body["remainingQueries"]))
    total = body.get("totalQueries")
    total = int(total) if isinstance(total, int) and total > 0 else remaining
    window = body.get("windowSizeSeconds")
    window = int(window) if isinstance(window, int) and window > 0 else DEFAULT_WINDOW
    return Quota(min(remaining, max(total, remaining)), max(total, remaining), window, now + window)


class RateLimitClient(AccountCall):
    """`fetch(token, mode, now) -> Quota`, raising a classified `UpstreamFailure` (E10)."""

    async def fetch(self, token: str, mode: str, now: float) -> Quota:
        body = await self.post_json(token, "/rest/rate-limits", {"modelName": mode}, what="rate-limits")
        try:
            return parse_rate_limits(body, now)
        except ValueError:
            raise transport_failure("rate-limits: unreadable answer") from None


__all__ = ["RateLimitClient", "UpstreamFailure", "parse_rate_limits"]
