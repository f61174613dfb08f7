"""E10 `POST /rest/rate-limits`: one mode's quota window for one account (protocol §7.1).

A small function rather than a method of the main upstream client, so quota upkeep (cron,
"refresh now") can use it without the chat machinery; it may be folded into `client.py` later.
It rides on the upstream client's `send` (egress, clearance, statsig, one recovery).
"""

from __future__ import annotations

from typing import Any

import orjson

from core.accounts import Quota
from core.protocol.classify import UpstreamFailure, classify_http, transport_failure
from core.settings import Settings

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


class RateLimitClient:
    """`fetch(token, mode, now) -> Quota`, raising a classified `UpstreamFailure`.

    The call goes through the upstream client's `send`: the account's egress and clearance, a
    signed `x-statsig-id`, and the same recoveries as chat.
    """

    def __init__(self, settings: Settings, *, upstream: Any = None, timeout: float | None = None) -> None:
        self.settings = settings
        self._timeout = timeout or min(settings.total_timeout, 30.0)
        self._own = upstream is None
        self._upstream = upstream

    def _client(self) -> Any:
        if self._upstream is None:
            from infra.upstream.client import CurlUpstream

            self._upstream = CurlUpstream(self.settings)
        return self._upstream

    async def fetch(self, token: str, mode: str, now: float) -> Quota:
        response = await self._client().send(
            token,
            "POST",
            f"{self.settings.upstream_url}/rest/rate-limits",
            data=orjson.dumps({"modelName": mode}),
            what="rate-limits",
            time_limit=self._timeout,
        )
        if response.status_code != 200:
            raise classify_http(response.status_code, response.content)
        try:
            return parse_rate_limits(orjson.loads(response.content), now)
        except (ValueError, orjson.JSONDecodeError):
            raise transport_failure("rate-limits: unreadable answer") from None

    async def aclose(self) -> None:
        if self._own and self._upstream is not None:
            upstream, self._upstream = self._upstream, None
            await upstream.close()


__all__ = ["RateLimitClient", "UpstreamFailure", "parse_rate_limits"]
