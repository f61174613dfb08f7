"""`x-statsig-id` (protocol §2.5): [v2]'s dynamic form, a base64 of a fake browser TypeError.

A fresh value per request. The real service validates signed values server-side; a signer
service ([v3] `url` mode) can be plugged in later behind the same function.
"""

from __future__ import annotations

import base64
import secrets
import string

_LOWER = string.ascii_lowercase
_ALNUM = string.ascii_lowercase + string.digits


def _word(alphabet: str, raw: bytes) -> str:
    return "".join([alphabet[b % len(alphabet)] for b in raw])


def statsig_id() -> str:
    # One read of the OS random source per value (it is on every chat request), not one per
    # character. The value is an unsigned decoy, not a secret: the slight modulo bias is harmless.
    raw = secrets.token_bytes(11)
    if raw[0] & 1:
        message = (
            f"e:TypeError: Cannot read properties of null (reading 'children['{_word(_ALNUM, raw[1:6])}']')"
        )
    else:
        message = f"e:TypeError: Cannot read properties of undefined (reading '{_word(_LOWER, raw[1:11])}')"
    return base64.b64encode(message.encode()).decode("ascii")
