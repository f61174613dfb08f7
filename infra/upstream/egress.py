"""Egress pools: which proxy an upstream call leaves through, and which identity it shows.

`GROKGATE_PROXY_URLS` lists proxies (http, https, socks5, socks4); none means direct. Each
account is pinned to one of them by rendezvous hashing of its account id: stable while the pool
is unchanged, and when a proxy cools down (a transport failure through it) only its accounts
move, each to its next choice, and come back when the cooldown ends. `{account}` in a proxy URL
is replaced by the account id (per-account credentials of a proxy service); such an entry gives
each account its own egress, and so its own clearance.

Health is kept per process and mirrored to the store's records (`egress:health`), read back at
most every `HEALTH_READ_EVERY` seconds, so instances learn each other's cooldowns without a
store read per request.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.accounts import account_id_for

if TYPE_CHECKING:  # the port is only named in annotations: not imported on the hot path
    from core.ports import RecordStore

RECORD = "egress:health"
HEALTH_READ_EVERY = 15.0
_CHROME = re.compile(r"Chrome/(\d+)")
_CREDENTIALS = re.compile(r"//[^/@]*@")


def redact(proxy: str | None) -> str:
    """A proxy URL fit for logs and listings: credentials removed."""
    return _CREDENTIALS.sub("//***@", proxy) if proxy else "direct"


def normalise_proxy(url: str) -> str:
    # DNS through the proxy ([v2]): socks5 -> socks5h, socks4 -> socks4a.
    if url.startswith("socks5://"):
        return "socks5h://" + url[len("socks5://") :]
    if url.startswith("socks4://"):
        return "socks4a://" + url[len("socks4://") :]
    return url


@dataclass(frozen=True, slots=True)
class Egress:
    """One way out: `key` names it in the store (no credentials in it), `proxy` is the URL."""

    key: str
    proxy: str | None
    entry: int  # index in the pool (-1: direct)


def egress_key(proxy: str | None) -> str:
    if not proxy:
        return "direct"
    return "proxy:" + hashlib.sha256(proxy.encode()).hexdigest()[:16]


def impersonation_for(user_agent: str, default: str, supported: Sequence[str]) -> str:
    """The curl_cffi target matching the UA's Chrome major (the nearest older one we have)."""
    match = _CHROME.search(user_agent)
    if not match or "Firefox" in user_agent:
        return default
    major = int(match.group(1))
    versions = sorted(
        (int(m.group(1)), name) for name in supported if (m := re.fullmatch(r"chrome(\d+)", name))
    )
    older = [name for version, name in versions if version <= major]
    return older[-1] if older else default


class EgressPool:
    """Args:
    proxies: the pool's proxy URLs (may hold `{account}`); empty: direct.
    records: the shared record store (health mirror), or None (health per process only).
    cooldown: seconds a proxy rests after a transport failure.
    clock: seconds since the epoch.
    """

    def __init__(
        self,
        proxies: Sequence[str],
        records: RecordStore | None = None,
        *,
        cooldown: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.proxies = [normalise_proxy(p) for p in proxies]
        self.records = records
        self.cooldown = cooldown
        self.clock = clock
        self._cooling: dict[int, float] = {}  # entry -> until
        self._read_at = float("-inf")
        self._pinned: dict[str, Egress] = {}

    def _resolve(self, entry: int, account_id: str) -> Egress:
        if entry < 0:
            return Egress("direct", None, -1)
        proxy = self.proxies[entry].replace("{account}", account_id)
        return Egress(egress_key(proxy), proxy, entry)

    def order(self, account_id: str) -> list[int]:
        """The account's preference order over the pool's entries (rendezvous hashing)."""

        def weight(i: int) -> bytes:
            return hashlib.blake2b(f"{i}|{self.proxies[i]}|{account_id}".encode(), digest_size=8).digest()

        return sorted(range(len(self.proxies)), key=weight, reverse=True)

    def for_token(self, token: str) -> Egress:
        """The egress of the account behind `token`: its first choice that is not cooling."""
        if not self.proxies:
            return _DIRECT
        account_id = account_id_for(token)
        now = self.clock()
        pinned = self._pinned.get(account_id)
        if pinned is not None and self._cooling.get(pinned.entry, 0.0) <= now:
            return pinned
        order = self.order(account_id)
        healthy = [i for i in order if self._cooling.get(i, 0.0) <= now]
        # Every proxy cooling: the one whose rest ends first (never direct: that would leak the origin IP).
        entry = healthy[0] if healthy else min(order, key=lambda i: self._cooling.get(i, 0.0))
        egress = self._resolve(entry, account_id)
        if len(self._pinned) > 65536:
            self._pinned.clear()
        self._pinned[account_id] = egress
        return egress

    def all(self, account_ids: Sequence[str] = ()) -> dict[str, str | None]:
        """Every egress (key -> proxy URL): one per entry, per account for `{account}` entries."""
        if not self.proxies:
            return {"direct": None}
        out: dict[str, str | None] = {}
        for i, proxy in enumerate(self.proxies):
            if "{account}" in proxy:
                for account_id in account_ids:
                    egress = self._resolve(i, account_id)
                    out[egress.key] = egress.proxy
            else:
                egress = self._resolve(i, "")
                out[egress.key] = egress.proxy
        return out

    def cooling(self) -> dict[int, float]:
        now = self.clock()
        return {i: until for i, until in self._cooling.items() if until > now}

    async def mark_failed(self, egress: Egress, reason: str) -> None:
        """A transport failure through `egress`: the proxy rests, its accounts move."""
        if egress.entry < 0:
            return
        now = self.clock()
        until = now + self.cooldown
        self._cooling[egress.entry] = until
        self._pinned = {a: e for a, e in self._pinned.items() if e.entry != egress.entry}
        if self.records is not None:
            for _ in range(3):  # a compare-and-set: merge with other instances' cooldowns
                value, version = await self.records.read(RECORD, now=now)
                cooling = {
                    k: v for k, v in (value or {}).items() if isinstance(v, dict) and v.get("until", 0) > now
                }
                cooling[str(egress.entry)] = {"until": until, "proxy": redact(self.proxies[egress.entry]),
                                              "reason": reason[:200]}  # fmt: skip
                if await self.records.write(
                    RECORD, cooling, version=version, now=now, ttl=self.cooldown or 1.0
                ):
                    break

    async def sync(self) -> None:
        """Take in the cooldowns other instances recorded (at most every HEALTH_READ_EVERY s)."""
        now = self.clock()
        if self.records is None or not self.proxies or now - self._read_at < HEALTH_READ_EVERY:
            return
        self._read_at = now
        value, _ = await self.records.read(RECORD, now=now)
        for key, entry in (value or {}).items():
            until = float(entry.get("until", 0)) if isinstance(entry, dict) else 0.0
            known = key.isdigit() and int(key) < len(self.proxies) and until > now
            if known and self._cooling.get(int(key), 0.0) < until:
                self._cooling[int(key)] = until
                self._pinned = {a: e for a, e in self._pinned.items() if e.entry != int(key)}


_DIRECT = Egress("direct", None, -1)
