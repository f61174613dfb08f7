"""The checks every grok.com call passes, in the order the real edge applies them:
Cloudflare, then the session cookie pair, then account state, then the statsig header."""

from __future__ import annotations

import asyncio
import time

from starlette.requests import HTTPConnection
from starlette.responses import Response

from infra.sim.accounts import Account
from infra.sim.state import SimState
from infra.sim.wire import (
    ANTI_BOT,
    BLOCKED,
    INVALID_CREDENTIALS,
    UNAVAILABLE,
    b64decode_loose,
    challenge_response,
    json_response,
)


def statsig_ok(
    value: str | None, policy: str, state: SimState | None = None, conn: HTTPConnection | None = None
) -> bool:
    if policy == "off":
        return True
    if not value:
        return False
    if policy == "any":
        return True
    if policy == "signed":
        assert state is not None and conn is not None
        method = conn.scope.get("method", "GET")
        return (
            state.build.check(value, method, conn.url.path, time.time(), state.config.statsig_window) is None
        )
    decoded = b64decode_loose(value)
    return decoded is not None and (policy != "v3" or len(decoded) == 70)


def session_token(conn: HTTPConnection) -> str | None:
    """The `sso` value when `sso` and `sso-rw` are both present and equal (the real client sends both)."""
    cookies = conn.cookies
    token = cookies.get("sso")
    return token if token and cookies.get("sso-rw") == token else None


async def admit(
    state: SimState, conn: HTTPConnection, *, statsig: bool = False, generation: bool = False
) -> Account | Response:
    """The account behind the request, or the rejection the real service would send."""
    cookies = conn.cookies
    raw = cookies.get("sso")
    account = state.accounts.get(raw) if raw else None
    needs_clearance = state.config.challenge_all or (account is not None and account.challenge)
    if needs_clearance and not state.cleared(cookies.get("cf_clearance"), conn.headers.get("user-agent")):
        return challenge_response()
    if account is None or session_token(conn) is None:
        return json_response(INVALID_CREDENTIALS, state.config.unauth_status)
    if account.expired:
        return json_response(INVALID_CREDENTIALS, account.unauth_status)
    if account.blocked:
        return json_response(BLOCKED, 403)
    if generation and account.flaky > 0:
        account.flaky -= 1
        return json_response(UNAVAILABLE, account.flaky_status)
    if statsig and not statsig_ok(conn.headers.get("x-statsig-id"), state.config.statsig, state, conn):
        return json_response(ANTI_BOT, 403)
    if account.slow_ms:
        await asyncio.sleep(account.slow_ms / 1000)
    return account
