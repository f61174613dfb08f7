"""Secrets at rest: account tokens (and clearance cookies) sealed with AES-GCM before any store sees them.

`GROKGATE_SECRET_KEY` holds one or more keys, comma-separated, each 32 random bytes in base64
(`python -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())"`). The first
seals; every one opens, so keys rotate: put the new key first, keep the old one after it, run
`grokgate secrets rotate` (every stored token re-sealed under the first key), then drop the old.

A sealed value is `gg1.<key id>.<base64url(nonce | ciphertext | tag)>`: the key id (the first
8 hex digits of the key's SHA-256) names the key that opens it, a fresh 96-bit nonce per value,
and the associated data binds the value to its purpose (`token`, `clearance`), so a sealed
clearance cannot be replayed as a token. A value without the prefix is plain (written before
encryption was turned on): it is read as it is, and `secrets rotate` seals it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import InternalError

PREFIX = "gg1."


class SecretKeyError(ValueError):
    """`GROKGATE_SECRET_KEY` is malformed (the message never holds key material)."""


def parse_keys(value: str) -> list[bytes]:
    """The keys of `GROKGATE_SECRET_KEY`: comma-separated base64, 32 bytes each."""
    keys: list[bytes] = []
    for n, part in enumerate(p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            key = base64.b64decode(part, validate=True)
        except (binascii.Error, ValueError):
            raise SecretKeyError(f"key {n + 1} is not base64") from None
        if len(key) != 32:
            raise SecretKeyError(f"key {n + 1} is {len(key)} bytes; AES-256-GCM needs 32")
        keys.append(key)
    if not keys:
        raise SecretKeyError("no key given")
    return keys


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


class Sealer:
    """Seals and opens secrets with AES-256-GCM; the first key seals, every key opens.

    Args: keys, as `parse_keys` returns them (or the `GROKGATE_SECRET_KEY` text)."""

    def __init__(self, keys: list[bytes] | str) -> None:
        parsed = parse_keys(keys) if isinstance(keys, str) else keys
        self._current = key_id(parsed[0])
        self._keys = {key_id(k): AESGCM(k) for k in parsed}

    @property
    def current_key_id(self) -> str:
        return self._current

    def seal(self, plain: str, purpose: str = "token") -> str:
        nonce = os.urandom(12)
        sealed = self._keys[self._current].encrypt(nonce, plain.encode(), purpose.encode())
        return f"{PREFIX}{self._current}.{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    def open(self, stored: str, purpose: str = "token") -> str:
        """The plain value of `stored` (a plain value is returned as it is)."""
        if not is_sealed(stored):
            return stored
        _, kid, data = stored.split(".", 2)
        aead = self._keys.get(kid)
        if aead is None:
            raise InternalError(f"A stored secret is sealed with key {kid}, which GROKGATE_SECRET_KEY lacks.")
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
        try:
            return aead.decrypt(raw[:12], raw[12:], purpose.encode()).decode()
        except InvalidTag:
            raise InternalError(f"A stored secret sealed with key {kid} does not open (tampered?).") from None

    def needs_rotation(self, stored: str) -> bool:
        """Plain, or sealed under a key other than the current one."""
        return not stored.startswith(f"{PREFIX}{self._current}.")


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX) and stored.count(".") >= 2
