"""`encrypted_content` of Responses reasoning items: an opaque token the gateway signs and checks.

OpenAI returns a reasoning item's state encrypted (`include: ["reasoning.encrypted_content"]`)
so that stateless clients (Codex sends `store: false`) can pass it back in `input`. The upstream
never replays thinking, so there is no state to carry; what matters is that the gateway only takes
back what it issued. The token is `gg1.<payload>.<mac>` (base64url), the payload a small JSON
object (item id, issue time, a digest of the summary text) and the MAC HMAC-SHA256 over it with
the gateway's reasoning key. A token that does not verify is a 400, never trusted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from core.errors import InvalidRequest

PREFIX = "gg1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, f"{PREFIX}.{payload}".encode(), hashlib.sha256).digest())


class Sealer:
    """Seals and opens reasoning tokens with one key (`key`: bytes, kept secret)."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def seal(self, item_id: str, text: str, now: float | None = None) -> str:
        body = {
            "id": item_id,
            "iat": int(time.time() if now is None else now),
            "sha": hashlib.sha256(text.encode()).hexdigest()[:32],
        }
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{PREFIX}.{payload}.{_mac(self._key, payload)}"

    def open(self, token: Any, param: str) -> dict[str, Any]:
        """The payload of a token this gateway issued; a 400 naming `param` for anything else."""
        parts = token.split(".") if isinstance(token, str) else []
        if (
            len(parts) == 3
            and parts[0] == PREFIX
            and hmac.compare_digest(_mac(self._key, parts[1]), parts[2])
        ):
            try:
                value = json.loads(_unb64(parts[1]))
            except ValueError:
                value = None
            if isinstance(value, dict):
                return value
        raise InvalidRequest(
            f"'{param}' was not issued by this gateway (its signature does not verify); pass back the "
            "reasoning items exactly as this gateway returned them, or leave them out.",
            param=param,
            code="invalid_encrypted_content",
        )
