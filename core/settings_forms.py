"""How a setting's text becomes its value: the accepted forms, the environment and `.env` readers.

`core/settings.py` declares the fields (names, defaults, descriptions); this module holds what they
share: the value types with their checks (a field annotated `ServiceUrl` accepts only http(s) URLs),
the mapping from variable names to fields, and the operator-facing text of a refusal.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ValidationError

from core.aliases import ModelAliases

PREFIX = "GROKGATE_"

# Variables read without the prefix: they belong to the platforms (Upstash, Vercel cron).
FOREIGN_VARIABLES = {
    "upstash_redis_rest_url": "UPSTASH_REDIS_REST_URL",
    "upstash_redis_rest_token": "UPSTASH_REDIS_REST_TOKEN",
    "cron_secret": "CRON_SECRET",
}

_PROXY_SCHEMES = ("http://", "https://", "socks5://", "socks5h://", "socks4://", "socks4a://")
_STORE_SCHEMES = ("sqlite:///", "redis://", "rediss://", "dynamodb://")
_STORE_FORMS = "expected sqlite:///path, redis://…, rediss://…, upstash or dynamodb://TABLE"


class SettingsError(ValueError):
    """A setting is missing, unknown or malformed; the message is meant for an operator."""


def variable(field: str) -> str:
    """The environment variable that sets `field`."""
    return FOREIGN_VARIABLES.get(field, PREFIX + field.upper())


def read_env(env: Mapping[str, str], known: Collection[str]) -> dict[str, str]:
    """The raw text of each setting `env` sets, by field name; empty values count as unset.

    Unknown `GROKGATE_*` names are refused: a typo must not silently fall back to a default.
    """
    raw: dict[str, str] = {}
    for name, value in env.items():
        if name.startswith(PREFIX):
            field = name[len(PREFIX) :].lower()
            if field not in known or field in FOREIGN_VARIABLES:
                raise SettingsError(f"{name}: unknown setting (see the settings table in README.md)")
            raw[field] = value
    for field, name in FOREIGN_VARIABLES.items():
        if name in env:
            raw[field] = env[name]
    # An empty key list is a choice (open, loopback only); any other empty value means the default.
    return {k: v for k, v in raw.items() if not (v == "" and k not in ("api_keys",))}


def describe(exc: ValidationError, secret: Collection[str]) -> str:
    """One line per refused value: the variable, the form it accepts, and what it got (unless secret)."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        accepted = error["msg"].removeprefix("Value error, ")
        shown = "<hidden>" if field in secret else repr(error.get("input"))
        lines.append(f"{variable(field)}: {accepted} (got {shown})")
    return "; ".join(lines)


def parse_dotenv(text: str) -> dict[str, str]:
    """Parse a `.env` file: `NAME=value` lines, `#` comments, optional quotes."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        name = name.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        result[name] = value
    return result


# The checks: each takes what pydantic parsed (or, `before`, the raw text) and returns the value.


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _origins(value: Any) -> Any:
    parts = value.split(",") if isinstance(value, str) else value
    out = []
    for part in (p.strip().rstrip("/") for p in parts):
        if not part:
            continue
        scheme, sep, host = part.partition("://")
        if part != "*" and (scheme not in ("http", "https") or not sep or not host or "/" in host):
            raise ValueError(f"expected origins like https://app.example.com (or *), got {part!r}")
        out.append(part.lower())
    return tuple(out)


def _proxy_list(value: Any) -> Any:
    value = _comma_list(value)
    for proxy in value:
        if not str(proxy).startswith(_PROXY_SCHEMES):
            raise ValueError("expected http://, https://, socks5:// or socks4:// proxy URLs")
    return value


def _proxy(value: str | None) -> str | None:
    if value and not value.startswith(_PROXY_SCHEMES):
        raise ValueError("expected http://, https://, socks5:// or socks4:// proxy URL")
    return value or None


def _statsig_value(value: str | None) -> str | None:
    if value:
        try:
            decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) != 70:
            raise ValueError("expected base64 of exactly 70 bytes")
    return value or None


def _service_url(value: str | None) -> str | None:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return value.rstrip("/") if value else None


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return value.rstrip("/")


def _secret_keys(value: str | None) -> str | None:
    if not value:
        return None
    for n, part in enumerate(p.strip() for p in value.split(",")):
        try:
            key = base64.b64decode(part, validate=True)
        except ValueError:
            raise ValueError(f"key {n + 1} is not base64") from None
        if len(key) != 32:
            raise ValueError(f"key {n + 1} is {len(key)} bytes; expected 32 random bytes in base64")
    return value


def _store(value: str) -> str:
    if not value.startswith(_STORE_SCHEMES) and value != "upstash":
        raise ValueError(_STORE_FORMS)
    return value


def _jobs(value: str | None) -> str | None:
    if value and not (value.startswith(_STORE_SCHEMES) or value == "upstash"):
        raise ValueError(_STORE_FORMS)
    return value or None


def _aliases(value: str) -> str:
    ModelAliases.parse(value)
    return value


# The value types the fields are declared with.
CommaList = Annotated[tuple[str, ...], BeforeValidator(_comma_list)]
Origins = Annotated[tuple[str, ...], BeforeValidator(_origins)]
ProxyList = Annotated[tuple[str, ...], BeforeValidator(_proxy_list)]
ProxyUrl = Annotated[str | None, AfterValidator(_proxy)]
StatsigValue = Annotated[str | None, AfterValidator(_statsig_value)]
ServiceUrl = Annotated[str | None, AfterValidator(_service_url)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
OptionalHttpUrl = Annotated[str | None, AfterValidator(_http_url)]
SecretKeys = Annotated[str | None, AfterValidator(_secret_keys)]
StoreUrl = Annotated[str, AfterValidator(_store)]
JobsUrl = Annotated[str | None, AfterValidator(_jobs)]
AliasText = Annotated[str, AfterValidator(_aliases)]
