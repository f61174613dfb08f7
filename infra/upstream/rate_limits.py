"""E10 `POST /rest/rate-limits`: one mode's quota window for one account (protocol §7.1).

A small function rather than a method of the main upstream client, so quota upkeep (cron,
"refresh now") can use it without the chat machinery; it may be folded into `client.py` later.
It keeps its own `AsyncSession`: a rare call, not worth the chat transport's pooled handles.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from core.accounts import Quota
from core.protocol.classify import UpstreamFailure, classify_http, transport_failure
from core.settings import Settings
from infra.upstream.headers import rest_headers

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
    """`fetch(token, mode, now) -> Quota`, raising a classified `UpstreamFailure`."""

    def __init__(self, settings: Settings, *, timeout: float | None = None) -> None:
        self.settings = settings
        self._timeout = timeout or min(settings.total_timeout, 30.0)
        self._session: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session_for_loop(self) -> Any:
        from curl_cffi.requests import AsyncSession

        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop:
            self._session = AsyncSession(
                impersonate=self.settings.impersonate,  # type: ignore[arg-type]
                proxy=self.settings.proxy_url,
                trust_env=False,
                allow_redirects=False,
            )
            self._loop = loop
        return self._session

    async def fetch(self, token: str, mode: str, now: float) -> Quota:
        origin = self.settings.upstream_url
        headers = rest_headers(
            token=token,
            user_agent=self.settings.user_agent,
            cf_cookies=self.settings.cf_cookies,
            origin=origin,
            referer=origin + "/",
        )
        # Plain-http test servers lose the body on curl's h2c upgrade offer (platforms.md §10).
        extra = {"http_version": "v1"} if origin.startswith("http://") else {}
        try:
            response = await self._session_for_loop().post(
                f"{origin}/rest/rate-limits",
                data=orjson.dumps({"modelName": mode}),
                headers=headers,
                timeout=self._timeout,
                **extra,
            )
        except Exception as exc:  # curl_cffi's errors: connect, reset, timeout
            raise transport_failure(
                f"rate-limits: {type(exc).__name__}", timeout="imeout" in str(exc)
            ) from None
        if response.status_code != 200:
            raise classify_http(response.status_code, response.content)
        try:
            return parse_rate_limits(orjson.loads(response.content), now)
        except (ValueError, orjson.JSONDecodeError):
            raise transport_failure("rate-limits: unreadable answer") from None

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


__all__ = ["RateLimitClient", "UpstreamFailure", "parse_rate_limits"]
