"""Simulated accounts: tier, failure knobs and per-(token, mode) quota windows.

A token is accepted when a test registered it, when it follows the `sim-` word scheme below, or when
the server runs with `accept_any`. The scheme lets a sandbox or CLI user pick behaviours without code:

    sim-<word>-<word>-...      words are split on "-"; unknown words are just a name
    basic | super | heavy      tier (default super)
    expired | unauth           session rejected: HTTP 400 invalid-credentials | HTTP 401
    blocked | ratelimited | challenge | antibot | grpcdenied | unlimited
    restantibot                REST chat answers 403 code 7 (anti-bot) while the gateway WebSocket works
    flaky[N]                   the first N generation requests fail with 503 (default 2)
    slow[MS]                   every response waits MS milliseconds before its first byte (default 1000)
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

CHAT_MODES = ("auto", "fast", "expert", "heavy", "grok-420-computer-use-sa")
MEDIA_BUCKETS = ("image_pro", "image_edit", "video", "video_720p")
TIERS = ("basic", "super", "heavy")

# [v2] defaults (docs/protocol.md#quotas): (total, window seconds); absent = unsupported.
_CHAT_TOTALS: dict[str, dict[str, tuple[int, int]]] = {
    "basic": {"auto": (20, 72000), "fast": (60, 72000), "expert": (8, 36000)},
    "super": {
        "auto": (50, 7200),
        "fast": (140, 7200),
        "expert": (50, 7200),
        "grok-420-computer-use-sa": (50, 7200),
    },
    "heavy": {
        "auto": (150, 7200),
        "fast": (400, 7200),
        "expert": (150, 7200),
        "heavy": (20, 7200),
        "grok-420-computer-use-sa": (150, 7200),
    },
}
# Imagine buckets reported by E11. The real numbers are unknown; these only need to be plausible.
_MEDIA_TOTALS: dict[str, dict[str, int]] = {
    "basic": {"image_pro": 2, "image_edit": 5, "video_720p": 2},
    "super": {"image_pro": 50, "image_edit": 50, "video": 20, "video_720p": 20},
    "heavy": {"image_pro": 100, "image_edit": 100, "video": 50, "video_720p": 50},
}
_MEDIA_WINDOW = 86400
_UNLIMITED = 10**9
_USER_NS = uuid.UUID("6f1c3c3e-8b4e-4a51-9d0e-5a0c2b7d9e11")
_WORD = re.compile(r"^(flaky|slow)(\d*)$")


@dataclass(slots=True)
class Window:
    total: int
    size: int
    remaining: int
    started_at: float | None = None  # the window opens on first use, like a rolling quota


@dataclass(slots=True)
class Account:
    """One simulated grok.com account. Knob fields are plain attributes; tests set them via configure()."""

    token: str
    tier: str = "super"
    user_id: str = ""
    email: str = ""
    expired: bool = False
    unauth_status: int = 400
    blocked: bool = False
    ratelimited: bool = False
    challenge: bool = False
    antibot: bool = False
    rest_antibot: bool = False
    grpc_denied: bool = False
    unlimited: bool = False
    flaky: int = 0
    flaky_status: int = 503
    slow_ms: int = 0
    window_seconds: int | None = None
    birth_date: str | None = None
    nsfw: bool = False
    tos_version: int | None = None
    windows: dict[str, Window] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.user_id:
            self.user_id = str(uuid.uuid5(_USER_NS, self.token))
        if not self.email:
            self.email = f"{self.user_id[:8]}@sim.grok.local"


def parse_token_words(token: str) -> dict[str, Any] | None:
    """Knobs encoded in a `sim-` token, or None when the token is not in the scheme."""
    if not token.startswith("sim-"):
        return None
    knobs: dict[str, Any] = {}
    for word in token[4:].lower().split("-"):
        if word in TIERS:
            knobs["tier"] = word
        elif word in ("expired", "blocked", "ratelimited", "challenge", "antibot", "unlimited"):
            knobs[word] = True
        elif word == "unauth":
            knobs.update(expired=True, unauth_status=401)
        elif word == "restantibot":
            knobs["rest_antibot"] = True
        elif word == "grpcdenied":
            knobs["grpc_denied"] = True
        elif m := _WORD.match(word):
            if m.group(1) == "flaky":
                knobs["flaky"] = int(m.group(2) or 2)
            else:
                knobs["slow_ms"] = int(m.group(2) or 1000)
    return knobs


class Accounts:
    """Thread-safe registry: tests mutate it from their thread while the server reads it on its loop."""

    def __init__(self, accept_any: bool = False, window_seconds: int | None = None) -> None:
        self._lock = threading.RLock()
        self._accounts: dict[str, Account] = {}
        self._offset = 0.0
        self._defaults = (accept_any, window_seconds)
        self.accept_any = accept_any
        self.window_seconds = window_seconds  # global override of every window's length

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the simulator's quota clock forward (windows reset without sleeping)."""
        with self._lock:
            self._offset += seconds

    def register(self, token: str, tier: str = "super", **knobs: Any) -> Account:
        if tier not in TIERS:
            raise ValueError(f"unknown tier {tier!r}")
        with self._lock:
            account = Account(token=token, tier=tier)
            self._apply(account, knobs)
            self._accounts[token] = account
            return account

    def configure(self, token: str, **knobs: Any) -> Account:
        """Set knobs on an account, registering it (with `sim-` words applied) when new."""
        with self._lock:
            account = self.get(token) or self.register(token)
            self._apply(account, knobs)
            if "tier" in knobs or "window_seconds" in knobs or "unlimited" in knobs:
                account.windows.clear()
            return account

    def _apply(self, account: Account, knobs: dict[str, Any]) -> None:
        for key, value in knobs.items():
            if key in ("token", "windows") or not hasattr(account, key):
                raise ValueError(f"unknown account knob {key!r}")
            setattr(account, key, value)

    def get(self, token: str) -> Account | None:
        with self._lock:
            account = self._accounts.get(token)
            if account is not None:
                return account
            words = parse_token_words(token)
            if words is None and not self.accept_any:
                return None
            words = words or {}
            return self.register(token, **words)

    def all(self) -> list[Account]:
        with self._lock:
            return list(self._accounts.values())

    def reset(self) -> None:
        with self._lock:
            self._accounts.clear()
            self._offset = 0.0
            self.accept_any, self.window_seconds = self._defaults

    # quota ------------------------------------------------------------------------------------------

    def _window(self, account: Account, mode: str) -> Window | None:
        window = account.windows.get(mode)
        if window is None:
            if mode in CHAT_MODES:
                spec = _CHAT_TOTALS[account.tier].get(mode)
                if spec is None:
                    return None
                total, size = spec
            elif mode in MEDIA_BUCKETS:
                total, size = _MEDIA_TOTALS[account.tier].get(mode, 0), _MEDIA_WINDOW
                if total == 0:
                    return None
            else:
                return None
            if account.unlimited:
                total = _UNLIMITED
            size = account.window_seconds or self.window_seconds or size
            window = account.windows[mode] = Window(total=total, size=size, remaining=total)
        if window.started_at is not None and self.now() >= window.started_at + window.size:
            window.remaining, window.started_at = window.total, None
        return window

    def consume(self, account: Account, mode: str) -> bool:
        """Spend one query of `mode`; False when the mode is exhausted or not in the tier."""
        with self._lock:
            if account.ratelimited:
                return False
            window = self._window(account, mode)
            if window is None or window.remaining <= 0:
                return False
            if window.started_at is None:
                window.started_at = self.now()
            window.remaining -= 1
            return True

    def quota(self, account: Account, mode: str) -> tuple[int, int, int, float | None]:
        """(remaining, total, window size, reset time) for E10/E11; an unsupported mode is all zeros."""
        with self._lock:
            window = self._window(account, mode)
            if window is None:
                return 0, 0, _MEDIA_WINDOW if mode in MEDIA_BUCKETS else 7200, None
            remaining = 0 if account.ratelimited else window.remaining
            resets = None if window.started_at is None else window.started_at + window.size
            return remaining, window.total, window.size, resets
