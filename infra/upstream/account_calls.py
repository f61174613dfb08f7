"""The upkeep calls of `core.services.upkeep.AccountCalls` over the upstream client's
`send`: the account's egress and identity, statsig where docs/protocol.md#statsig lists it, one recovery each."""

from __future__ import annotations

from typing import Any

import orjson

from core.protocol.account_upkeep import (
    BIRTH_DATE_LOCKED,
    BIRTH_DATE_PATH,
    GRPC_CONTENT_TYPE,
    NSFW_ENABLE_BODY,
    NSFW_PATH,
    TOS_BODY,
    TOS_PATH,
    TOS_RECORD_PATH,
    TOS_VERSION,
    birth_date_body,
    grpc_status,
)
from core.protocol.classify import Kind, UpstreamFailure, classify_http
from infra.upstream.headers import client_hints


class UpkeepCalls:
    """Args:
    upstream: the `CurlUpstream` whose `send` carries the calls.
    """

    def __init__(self, upstream: Any) -> None:
        self.upstream = upstream
        self.settings = upstream.settings

    async def _grpc(
        self, token: str, url: str, body: bytes, *, origin: str, referer: str, statsig: bool, cf: bool
    ) -> None:
        def grpc(headers: dict[str, str]) -> dict[str, str]:
            headers.update(
                {
                    "content-type": GRPC_CONTENT_TYPE,
                    "x-grpc-web": "1",
                    "x-user-agent": "connect-es/2.1.1",
                    "origin": origin,
                    "referer": referer,
                    "sec-fetch-site": "same-origin"
                    if origin.split("//")[1] == referer.split("//")[1].split("/")[0]
                    else "same-site",
                }
            )
            if not cf:  # the accounts.x.ai call carries the SSO pair only: the CF cookies are grok.com's
                headers["cookie"] = f"sso={token}; sso-rw={token}"
            return headers

        response = await self.upstream.send(
            token, "POST", url, data=body, statsig=statsig, headers=grpc, what="grpc-web call"
        )
        if response.status_code != 200:
            raise classify_http(response.status_code, response.content[:4096])
        code, message = grpc_status(response.content, {k.lower(): v for k, v in response.headers.items()})
        if code != 0:
            raise UpstreamFailure(Kind.REJECTED, f"grpc-status {code}: {message or 'no message'}", status=200)

    async def accept_tos(self, token: str) -> None:
        s = self.settings
        await self._grpc(token, s.accounts_url + TOS_PATH, TOS_BODY, origin=s.accounts_url,
                         referer=s.accounts_url + "/accept-tos", statsig=False, cf=False)  # fmt: skip

        def hints(headers: dict[str, str]) -> dict[str, str]:
            headers.update(client_hints(headers.get("user-agent", "")))  # [v3] adds them here
            return headers

        response = await self.upstream.send(
            token, "POST", s.upstream_url + TOS_RECORD_PATH, data=orjson.dumps({"tosVersion": TOS_VERSION}),
            headers=hints, what="ToS record",
        )  # fmt: skip
        if response.status_code // 100 != 2:
            raise classify_http(response.status_code, response.content[:4096])

    async def set_birth_date(self, token: str, date: str) -> str | None:
        s = self.settings
        response = await self.upstream.send(
            token, "POST", s.upstream_url + BIRTH_DATE_PATH, data=orjson.dumps(birth_date_body(date)), what="birth date"
        )  # fmt: skip
        if response.status_code == 429 and BIRTH_DATE_LOCKED.encode() in response.content:
            return "already"  # set before, and locked: what the step wanted
        if response.status_code // 100 != 2:
            raise classify_http(response.status_code, response.content[:4096])
        return None

    async def enable_nsfw(self, token: str) -> None:
        s = self.settings
        await self._grpc(token, s.upstream_url + NSFW_PATH, NSFW_ENABLE_BODY, origin=s.upstream_url,
                         referer=s.upstream_url + "/", statsig=True, cf=True)  # fmt: skip
