"""Accounts: the records of the pool, their tokens, quota windows, leases and outcomes.

These are plain data shared by every `AccountStore` adapter, so that the SQLite, Redis and
DynamoDB stores speak the same domain and one contract suite can test them all.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum

from core.catalog import Tier

MAX_TOKEN_BYTES = 16 * 1024

# Default quota windows per tier and mode: (total queries, window seconds), [v2] (docs/protocol.md#quotas).
DEFAULT_QUOTAS: dict[Tier, dict[str, tuple[int, int]]] = {
    Tier.BASIC: {"auto": (20, 72000), "fast": (60, 72000), "expert": (8, 36000)},
    Tier.SUPER: {"auto": (50, 7200), "fast": (140, 7200), "expert": (50, 7200)},
    Tier.HEAVY: {"auto": (150, 7200), "fast": (400, 7200), "expert": (150, 7200), "heavy": (20, 7200)},
}


class AccountStatus(StrEnum):
    ACTIVE = "active"
    COOLING = "cooling"  # rate limited until `cooling_until`
    EXPIRED = "expired"  # the upstream refused the token
    BLOCKED = "blocked"  # the upstream blocked the user
    DISABLED = "disabled"  # an operator took it out


class TierSource(StrEnum):
    """Where an account's tier came from, which decides whether the upstream may change it."""

    ASSUMED = "assumed"  # nobody said and nothing was detected yet: basic until a refresh tells
    DETECTED = "detected"  # read from the upstream's rate-limit totals (`detect_tier`)
    OPERATOR = "operator"  # given on import or by set-tier: detection never overrides it


class OutcomeKind(StrEnum):
    SUCCESS = "success"
    RATE_LIMITED = "rate_limited"
    EXPIRED = "expired"
    BLOCKED = "blocked"
    CHALLENGE = "challenge"  # Cloudflare or anti-bot: the egress is at fault, not the account
    TRANSIENT = "transient"  # 5xx, reset, timeout: nothing to hold against the account
    CANCELLED = "cancelled"  # the client went away


@dataclass(frozen=True, slots=True)
class Quota:
    """One mode's window for one account."""

    remaining: int
    total: int
    window_seconds: int
    reset_at: float  # when the window refills; estimated, the upstream reports no reset time

    def current(self, now: float) -> Quota:
        """The window as it stands at `now` (refilled if it has ended)."""
        if now >= self.reset_at:
            return Quota(self.total, self.total, self.window_seconds, now + self.window_seconds)
        return self


@dataclass(frozen=True, slots=True)
class Account:
    """An account record as stores return it. `token` is the secret: never log it."""

    id: str
    token: str
    tier: Tier
    status: AccountStatus = AccountStatus.ACTIVE
    note: str = ""
    tags: tuple[str, ...] = ()
    quotas: dict[str, Quota] = field(default_factory=dict)
    tier_source: TierSource = TierSource.ASSUMED
    in_flight: int = 0
    cooling_until: float = 0.0
    reason: str = ""  # the upstream's words for the last failure
    created_at: float = 0.0
    last_used_at: float = 0.0
    last_failure_at: float = 0.0
    use_count: int = 0
    fail_count: int = 0

    @property
    def masked(self) -> str:
        return mask_token(self.token)

    def public(self) -> dict[str, object]:
        """A listing of the record with the token masked."""
        return {
            "id": self.id,
            "token": self.masked,
            "tier": self.tier.value,
            "tier_source": self.tier_source.value,
            "status": self.status.value,
            "note": self.note,
            "tags": list(self.tags),
            "in_flight": self.in_flight,
            "cooling_until": self.cooling_until or None,
            "reason": self.reason,
            "quotas": {
                mode: {
                    "remaining": q.remaining,
                    "total": q.total,
                    "window_seconds": q.window_seconds,
                    "reset_at": q.reset_at,
                }
                for mode, q in sorted(self.quotas.items())
            },
            "created_at": self.created_at,
            "last_used_at": self.last_used_at or None,
            "use_count": self.use_count,
            "fail_count": self.fail_count,
        }


@dataclass(frozen=True, slots=True)
class NewAccount:
    """An account to import: a normalised token and what the operator said of it."""

    token: str
    tier: Tier = Tier.BASIC
    note: str = ""
    tags: tuple[str, ...] = ()
    tier_source: TierSource = TierSource.ASSUMED
    # Derived from the token; given when `token` is stored sealed (encrypted), so that the id
    # (and the duplicate check) still follow the plain token.
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", account_id_for(self.token))

    def account(self, now: float) -> Account:
        """The account as a store first records it: active, its tier's default windows."""
        return Account(
            id=self.id,
            token=self.token,
            tier=self.tier,
            note=self.note,
            tags=self.tags,
            tier_source=self.tier_source,
            quotas=default_quotas(self.tier, now),
            created_at=now,
        )


@dataclass(frozen=True, slots=True)
class Lease:
    """A claim on one account for one request: one quota unit reserved, counted in flight."""

    id: str
    account_id: str
    token: str
    tier: Tier
    mode: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a leased request, applied to the account on release."""

    kind: OutcomeKind
    reason: str = ""
    cooling_until: float = 0.0  # for RATE_LIMITED
    refund: bool = False  # give the reserved quota unit back (the upstream never counted it)
    quota: Quota | None = None  # the window the upstream reported, if it did

    @classmethod
    def success(cls, quota: Quota | None = None) -> Outcome:
        return cls(OutcomeKind.SUCCESS, quota=quota)


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    """An operator's edit of an account: each field left None stays as it is."""

    tier: Tier | None = None
    tier_source: TierSource | None = None
    note: str | None = None
    tags: tuple[str, ...] | None = None
    token: str | None = None  # the stored form of the same token (re-sealed under a new key)

    def apply(self, account: Account) -> Account:
        return replace(
            account,
            token=account.token if self.token is None else self.token,
            tier=account.tier if self.tier is None else self.tier,
            tier_source=account.tier_source if self.tier_source is None else self.tier_source,
            note=account.note if self.note is None else self.note,
            tags=account.tags if self.tags is None else self.tags,
        )


@dataclass(frozen=True, slots=True)
class ImportReport:
    added: int
    skipped: int
    invalid: int
    tiers: dict[str, int] = field(default_factory=dict)  # added accounts per tier, after detection
    unchecked: int = 0  # added accounts whose tier the upstream did not tell (refresh will retry)


def account_id_for(token: str) -> str:
    """A stable id derived from the token, so that a re-import is a duplicate, not a new account."""
    return "acc_" + hashlib.sha256(token.encode()).hexdigest()[:16]


def matches(account: Account, tag: str | None, text: str | None) -> bool:
    """The listing filters of `AccountStore.list`: a tag carried, text in the id, note or a tag."""
    if tag and tag not in account.tags:
        return False
    if text:
        needle = ascii_lower(text)
        haystacks = (account.id, account.note, *account.tags)
        return any(needle in ascii_lower(h) for h in haystacks)
    return True


def ascii_lower(value: str) -> str:
    """Lower case for ASCII letters only, as SQLite's `lower()` and Lua's `string.lower` do."""
    return value.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def mask_token(token: str) -> str:
    if len(token) <= 12:
        return "*" * len(token)
    return f"{token[:4]}…{token[-4:]}"


_INVISIBLE = re.compile("[\u200b-\u200f\u2060\ufeff]")
# RFC 6265 cookie-octet: printable ASCII but space, DQUOTE, comma, semicolon and backslash.
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+")


def normalize_token(raw: str) -> str | None:
    """A pasted `sso` cookie value (docs/protocol.md#token), or None when it cannot be one.

    Only what surrounds the value is removed: whitespace around it, a leading `sso=` (any case),
    the rest of a whole cookie line (from the first `;`), and zero-width characters a copy may
    carry. What is left must be a cookie value (RFC 6265 cookie-octets: no spaces, quotes,
    commas, backslashes or non-ASCII) of at most 16 KiB; anything else is invalid rather than
    rewritten into a different token.
    """
    value = _INVISIBLE.sub("", raw).strip()
    if value[:4].lower() == "sso=":
        value = value[4:]
    value = value.split(";", 1)[0].strip()
    if not _COOKIE_VALUE.fullmatch(value) or len(value) > MAX_TOKEN_BYTES:
        return None
    return value


def detect_tier(totals: dict[str, int]) -> Tier | None:
    """The tier that the upstream's rate-limit totals reveal (docs/protocol.md#quotas), or None.

    Each recognised total votes: `auto` 7 or 20, `fast` 30 or 60 mean basic; `auto` 50, `fast`
    140 super; `auto` 150, `fast` 400 heavy; any `heavy`-mode quota means heavy. Votes that
    disagree give the lowest tier named (an over-claimed tier would send requests the account
    cannot serve); no vote at all gives None and the tier stays as it was.
    """
    votes: set[Tier] = set()
    auto, fast, heavy = totals.get("auto"), totals.get("fast"), totals.get("heavy")
    votes |= {tier for tier, seen in _AUTO_TOTALS.items() if auto in seen}
    votes |= {tier for tier, seen in _FAST_TOTALS.items() if fast in seen}
    if heavy:
        votes.add(Tier.HEAVY)
    return min(votes, key=lambda tier: tier.rank) if votes else None


_AUTO_TOTALS = {Tier.BASIC: (7, 20), Tier.SUPER: (50,), Tier.HEAVY: (150,)}
_FAST_TOTALS = {Tier.BASIC: (30, 60), Tier.SUPER: (140,), Tier.HEAVY: (400,)}


def default_quotas(tier: Tier, now: float) -> dict[str, Quota]:
    return {
        mode: Quota(total, total, window, now + window)
        for mode, (total, window) in DEFAULT_QUOTAS[tier].items()
    }
