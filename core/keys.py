"""Client keys: one API key per client, with a model allowlist, limits and an expiry.

The root keys of `GROKGATE_API_KEYS` stay as they are (no limits); client keys live in the
store's records, so every instance sees the same keys and counts against the same limits. A
key's secret is shown once, at creation; the store keeps only its SHA-256, and listings show the
first characters so an operator can tell keys apart.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

SECRET_PREFIX = "sk-gg-"  # noqa: S105 (the visible prefix of every client key, not a secret)
ROOT_ID = "root"  # the ledger's name for the root keys of GROKGATE_API_KEYS
OPEN_ID = "open"  # ... and for requests of a gateway running without keys
LIMIT_FIELDS = ("rpm", "concurrency", "daily_requests", "daily_tokens")


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class ClientKey:
    """A client key as the store keeps it (the hash, never the secret)."""

    id: str
    name: str
    key_hash: str
    shown: str  # the secret's first characters, for listings
    created_at: float
    models: tuple[str, ...] = ()  # ids or globs; empty: every model
    rpm: int | None = None
    concurrency: int | None = None
    daily_requests: int | None = None
    daily_tokens: int | None = None
    expires_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def allows(self, model: str) -> bool:
        return not self.models or any(fnmatchcase(model, pattern) for pattern in self.models)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    @property
    def limited(self) -> bool:
        return any(getattr(self, name) is not None for name in LIMIT_FIELDS)

    def public(self) -> dict[str, Any]:
        """The key as listings show it: everything but the hash."""
        return {
            "id": self.id,
            "object": "client_key",
            "name": self.name,
            "key": self.shown + "…",
            "models": list(self.models),
            "rpm": self.rpm,
            "concurrency": self.concurrency,
            "daily_requests": self.daily_requests,
            "daily_tokens": self.daily_tokens,
            "expires_at": self.expires_at,
            "created_at": self.created_at,
        }

    def record(self) -> dict[str, Any]:
        return {**self.public(), "key_hash": self.key_hash, "shown": self.shown, "models": list(self.models)}

    @classmethod
    def from_record(cls, value: dict[str, Any]) -> ClientKey:
        return cls(
            id=str(value["id"]),
            name=str(value.get("name", "")),
            key_hash=str(value["key_hash"]),
            shown=str(value.get("shown", "")),
            created_at=float(value.get("created_at", 0.0)),
            models=tuple(value.get("models") or ()),
            rpm=value.get("rpm"),
            concurrency=value.get("concurrency"),
            daily_requests=value.get("daily_requests"),
            daily_tokens=value.get("daily_tokens"),
            expires_at=value.get("expires_at"),
        )

    def changed(self, changes: dict[str, Any]) -> ClientKey:
        """This key with the given fields replaced (the fields of `KeySpec`, already checked)."""
        if "models" in changes:
            changes = {**changes, "models": tuple(changes["models"] or ())}
        return replace(self, **changes)


def day_of(now: float) -> str:
    """The UTC day of `now` as YYYY-MM-DD: the unit of daily limits and of the usage ledger."""
    import time

    return time.strftime("%Y-%m-%d", time.gmtime(now))


def seconds_to_midnight(now: float) -> float:
    return 86400 - (now % 86400)
