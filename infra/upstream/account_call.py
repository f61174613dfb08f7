"""One small JSON call made as an account (rate limits, a LiveKit token): through the upstream
client's `send`, so it has the account's egress and clearance, a signed `x-statsig-id`, and the
same recoveries as chat."""

from __future__ import annotations

from typing import Any

import orjson

from core.protocol.classify import classify_http, transport_failure
from core.settings import Settings


class AccountCall:
    """Owns a `CurlUpstream` (built on first use) unless one is given."""

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

    async def post_json(self, token: str, path: str, body: Any, *, what: str) -> Any:
        """The parsed JSON answer of a 200; a classified `UpstreamFailure` otherwise."""
        response = await self._client().send(
            token,
            "POST",
            f"{self.settings.upstream_url}{path}",
            data=orjson.dumps(body),
            what=what,
            time_limit=self._timeout,
        )
        if response.status_code != 200:
            raise classify_http(response.status_code, response.content)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise transport_failure(f"{what}: unreadable answer") from None

    async def aclose(self) -> None:
        if self._own and self._upstream is not None:
            upstream, self._upstream = self._upstream, None
            await upstream.aclose()
