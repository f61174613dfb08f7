"""Cloudflare clearance (docs/protocol.md#clearance): a FlareSolverr client, and clearance bound to an egress.

A clearance is what a real browser got from Cloudflare through one egress (a proxy, or none):
the `cf_clearance` and `__cf_bm` cookies and the User-Agent that solved the challenge. It only
counts when sent through the same egress with that exact User-Agent, so every upstream call
through the egress sends both (and impersonates that browser's version).

Shared state: clearances live in the store's records (`clearance:<egress key>`), so every
instance uses the one solve. **This module is the only reader and writer of those records**
(`_encode` / `_decode`, `_read` / `_write`): sealing the cookies at rest belongs there.

`ClearanceManager.refresh(egress, stale)` is single-flight per egress: concurrent challenged
requests wait for one solve. A solve another instance already stored (newer than the stale one)
is taken without solving again. `refresh_expiring` is the cron's: it renews what expires within
the next interval, so a repeat delivery finds nothing to do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from core.errors import UpstreamError

if TYPE_CHECKING:  # the port is only named in annotations: not imported on the hot path
    from core.ports import RecordStore

log = logging.getLogger("grokgate.clearance")
PREFIX = "clearance:"
KEPT_COOKIES = ("cf_clearance", "__cf_bm", "_cfuvid")


@dataclass(frozen=True, slots=True)
class Clearance:
    """Cookies (`name=value; ...`, Cloudflare's only) and the User-Agent that earned them."""

    cookies: str
    user_agent: str
    expires_at: float
    solved_at: float

    def valid(self, now: float) -> bool:
        return now < self.expires_at


def _encode(clearance: Clearance) -> dict[str, Any]:
    return {
        "cookies": clearance.cookies,
        "user_agent": clearance.user_agent,
        "expires_at": clearance.expires_at,
        "solved_at": clearance.solved_at,
    }


def _decode(value: dict[str, Any] | None) -> Clearance | None:
    if (
        value is None
        or not isinstance(value.get("cookies"), str)
        or not isinstance(value.get("user_agent"), str)
    ):
        return None
    return Clearance(
        value["cookies"],
        value["user_agent"],
        float(value.get("expires_at", 0)),
        float(value.get("solved_at", 0)),
    )


async def _read(records: RecordStore, key: str, now: float) -> tuple[Clearance | None, int]:
    value, version = await records.read(PREFIX + key, now=now)
    return _decode(value), version


async def _write(records: RecordStore, key: str, clearance: Clearance, version: int, now: float) -> None:
    # A lost race means another instance stored its own solve just now: as good as ours.
    await records.write(
        PREFIX + key, _encode(clearance), version=version, now=now, ttl=max(1.0, clearance.expires_at - now)
    )


class ClearanceSolveFailed(UpstreamError):
    """FlareSolverr could not clear the challenge (down, timed out, or answered an error)."""

    default_code = "clearance_failed"


class FlareSolverr:
    """`POST {url}/v1` with `request.get` (same section): the cookies and UA of a solved page.

    Args:
        url: FlareSolverr's base URL (`/v1` is appended).
        timeout: seconds FlareSolverr may spend (`maxTimeout`); the HTTP call gets 30 s more.
    """

    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/") + "/v1"
        self.timeout = timeout

    async def solve(self, target: str, proxy: str | None) -> tuple[str, str, float | None]:
        """(cookies, user agent, earliest cookie expiry or None) for `target` through `proxy`."""
        import httpx

        payload: dict[str, Any] = {
            "cmd": "request.get",
            "url": target,
            "maxTimeout": int(self.timeout * 1000),
        }
        if proxy:
            payload["proxy"] = {"url": proxy}
        try:
            async with httpx.AsyncClient(timeout=self.timeout + 30, trust_env=False) as client:
                response = await client.post(self.url, content=orjson.dumps(payload),
                                             headers={"content-type": "application/json"})  # fmt: skip
            body = orjson.loads(response.content)
        except (httpx.HTTPError, orjson.JSONDecodeError) as exc:
            raise ClearanceSolveFailed(
                f"FlareSolverr is unreachable or answered garbage ({type(exc).__name__})."
            ) from None
        if (
            not isinstance(body, dict)
            or body.get("status") != "ok"
            or not isinstance(body.get("solution"), dict)
        ):
            message = str(body.get("message", ""))[:200] if isinstance(body, dict) else ""
            raise ClearanceSolveFailed(
                f"FlareSolverr did not solve the challenge: {message or 'no solution'}"
            )
        solution = body["solution"]
        user_agent = solution.get("userAgent")
        if not isinstance(user_agent, str) or not user_agent:
            raise ClearanceSolveFailed("FlareSolverr answered without a User-Agent.")
        parts, expiries = [], []
        for cookie in solution.get("cookies") or []:
            if not isinstance(cookie, dict):
                continue
            name, value = str(cookie.get("name", "")), str(cookie.get("value", ""))
            if value and (name in KEPT_COOKIES or name.startswith("cf_chl_")):
                parts.append(f"{name}={value}")
                if (
                    name == "cf_clearance"
                    and isinstance(cookie.get("expires"), int | float)
                    and cookie["expires"] > 0
                ):
                    expiries.append(float(cookie["expires"]))
        # No cookies but a UA is a valid "no challenge" answer ([v3]).
        return "; ".join(parts), user_agent, min(expiries) if expiries else None


class ClearanceManager:
    """Clearance per egress key: a process cache over the store's records, solves shared.

    Args:
        records: the shared record store.
        solver: a `FlareSolverr`, or None (then there is nothing to refresh: manual cookies only).
        target: the URL solved (the upstream's base URL).
        ttl: the longest a solved clearance is trusted, seconds (a shorter cookie expiry wins).
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        records: RecordStore,
        solver: FlareSolverr | None,
        *,
        target: str,
        ttl: float = 1800.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.records = records
        self.solver = solver
        self.target = target
        self.ttl = ttl
        self.clock = clock
        self.solves = 0
        self._cache: dict[str, Clearance | None] = {}
        self._flights: dict[str, asyncio.Future[Clearance | None]] = {}

    @property
    def enabled(self) -> bool:
        return self.solver is not None

    def cached(self, key: str) -> Clearance | bool | None:
        """The process's copy: a Clearance, None (known: none), or False (not loaded yet)."""
        if key not in self._cache:
            return False
        clearance = self._cache[key]
        if clearance is not None and not clearance.valid(self.clock()):
            return False
        return clearance

    async def current(self, key: str) -> Clearance | None:
        """The valid clearance of the egress (store first, no solve), or None."""
        cached = self.cached(key)
        if cached is not False:
            return cached  # type: ignore[return-value]
        clearance, _ = await _read(self.records, key, self.clock())
        if clearance is not None and not clearance.valid(self.clock()):
            clearance = None
        self._cache[key] = clearance
        return clearance

    async def refresh(self, key: str, proxy: str | None, stale: Clearance | None) -> Clearance | None:
        """A clearance newer than `stale`: another instance's, or one solve shared by every caller."""
        flight = self._flights.get(key)
        if flight is not None:
            return await asyncio.shield(flight)
        flight = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        try:
            clearance = await self._refresh(key, proxy, stale)
        except BaseException as exc:
            if not flight.done():
                flight.set_exception(exc)
                flight.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        finally:
            self._flights.pop(key, None)
        flight.set_result(clearance)
        return clearance

    async def _refresh(self, key: str, proxy: str | None, stale: Clearance | None) -> Clearance | None:
        now = self.clock()
        stored, version = await _read(self.records, key, now)
        if stored is not None and stored.valid(now) and (stale is None or stored.solved_at > stale.solved_at):
            self._cache[key] = stored
            return stored
        if self.solver is None:
            return None
        cookies, user_agent, expires = await self.solver.solve(self.target, proxy)
        self.solves += 1
        now = self.clock()
        clearance = Clearance(cookies, user_agent, min(expires or now + self.ttl, now + self.ttl), now)
        await _write(self.records, key, clearance, version, now)
        self._cache[key] = clearance
        log.info("clearance solved for egress %s (valid %.0f s)", key, clearance.expires_at - now)
        return clearance

    async def refresh_expiring(self, egresses: dict[str, str | None], within: float) -> dict[str, object]:
        """Renew every known egress whose clearance is missing or expires within `within` seconds.

        `egresses` maps egress key -> proxy URL. Idempotent: a second run finds them fresh.
        """
        now = self.clock()
        refreshed, fresh, failed = [], [], []
        for key, proxy in egresses.items():
            clearance, _ = await _read(self.records, key, now)
            if clearance is not None and clearance.expires_at > now + within:
                fresh.append(key)
                continue
            try:
                await self.refresh(key, proxy, clearance or _EXPIRED)
                refreshed.append(key)
            except ClearanceSolveFailed as exc:
                log.warning("clearance refresh of egress %s failed: %s", key, exc.message)
                failed.append(key)
        return {"refreshed": refreshed, "fresh": fresh, "failed": failed}


_EXPIRED = Clearance("", "", 0.0, float("inf"))  # "whatever is stored is stale": forces a solve
