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


def statsig_id() -> str:
    if secrets.randbelow(2):
        word = "".join(secrets.choice(_ALNUM) for _ in range(5))
        message = f"e:TypeError: Cannot read properties of null (reading 'children['{word}']')"
    else:
        word = "".join(secrets.choice(_LOWER) for _ in range(10))
        message = f"e:TypeError: Cannot read properties of undefined (reading '{word}')"
    return base64.b64encode(message.encode()).decode("ascii")
