"""The browser header set (docs/protocol.md#headers), origin and referer per call, and the cookie.

Values are forced to Latin-1 (look-alike punctuation mapped first), as curl sends bytes.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

BAGGAGE = (
    "sentry-environment=production,sentry-release=d6add6fb0460641fd482d767a335ef72b9b6abb8,"
    "sentry-public_key=b311e0f2690c81f25e2c4cf6d4f7ce1c"
)
_CF_KEEP = re.compile(r"^(cf_clearance|__cf_bm|_cfuvid|cf_chl_.*)$", re.I)
_ZERO_WIDTH = re.compile("[\u200b-\u200f\u2060\ufeff]")
_CHROME = re.compile(r"Chrome/(\d+)")


def latin1(value: str) -> str:
    value = _ZERO_WIDTH.sub("", value)
    for a, b in (
        ("\u2018", "'"),
        ("\u2019", "'"),
        ("\u201c", '"'),
        ("\u201d", '"'),
        ("\u2013", "-"),
        ("\u2014", "-"),
    ):
        value = value.replace(a, b)
    return value.encode("latin-1", "ignore").decode("latin-1")


def cf_cookie_part(cf_cookies: str | None) -> str:
    """Only the Cloudflare clearance cookies survive ([v3]); first occurrence wins."""
    if not cf_cookies:
        return ""
    kept: dict[str, str] = {}
    for item in cf_cookies.split(";"):
        name, sep, value = item.strip().partition("=")
        name, value = name.strip(), value.strip()
        printable = all(32 < ord(c) < 127 for c in value)
        if (
            sep
            and value
            and printable
            and _CF_KEEP.match(name)
            and name.lower() not in kept
            and len(value) < 4096
        ):
            kept[name.lower()] = f"{name}={value}"
    return "; ".join(kept.values())


def cookie(token: str, cf_cookies: str | None) -> str:
    base = f"sso={token}; sso-rw={token}"
    cf = cf_cookie_part(cf_cookies)
    return f"{base}; {cf}" if cf else base


def client_hints(user_agent: str) -> dict[str, str]:
    match = _CHROME.search(user_agent)
    if not match or "Firefox" in user_agent or ("Safari" in user_agent and "Chrome" not in user_agent):
        return {}
    major = match.group(1)
    if "Windows" in user_agent:
        platform = "Windows"
    elif "Android" in user_agent:
        platform = "Android"
    elif "iPhone" in user_agent or "iPad" in user_agent:
        platform = "iOS"
    elif "Mac OS X" in user_agent:
        platform = "macOS"
    else:
        platform = "Linux"
    return {
        "sec-ch-ua": f'"Google Chrome";v="{major}", "Chromium";v="{major}", "Not(A:Brand";v="24"',
        "sec-ch-ua-mobile": "?1" if platform in ("Android", "iOS") else "?0",
        "sec-ch-ua-model": '""',
        "sec-ch-ua-platform": f'"{platform}"',
        "sec-ch-ua-arch": '"arm"' if "arm" in user_agent.lower() else '"x86"',
        "sec-ch-ua-bitness": '"64"',
    }


def rest_headers(
    *,
    token: str,
    user_agent: str,
    cf_cookies: str | None,
    origin: str = "https://grok.com",
    referer: str = "https://grok.com/",
    content_type: str = "application/json",
    statsig: str | None = None,
    request_id: bool = True,
) -> dict[str, str]:
    """Headers of one REST call to grok.com (JSON or streamed JSON); `statsig` is the value of
    `x-statsig-id` for the calls that carry one (infra/upstream/statsig.py makes it)."""
    same = urlsplit(origin).hostname == urlsplit(referer).hostname
    headers = {
        "accept": "*/*",
        "accept-encoding": "gzip, deflate, br, zstd",
        "accept-language": "zh-CN,zh;q=0.9,en;q=0.8",
        "baggage": BAGGAGE,
        "cache-control": "no-cache",
        "content-type": content_type,
        "origin": origin,
        "pragma": "no-cache",
        "priority": "u=1, i",
        "referer": referer,
        "sec-fetch-dest": "empty",
        "sec-fetch-mode": "cors",
        "sec-fetch-site": "same-origin" if same else "same-site",
        "user-agent": user_agent,
        **client_hints(user_agent),
        "cookie": cookie(token, cf_cookies),
    }
    if statsig is not None:
        headers["x-statsig-id"] = statsig
    if request_id:
        headers["x-xai-request-id"] = str(uuid.uuid4())
    return {k: latin1(v) for k, v in headers.items()}


def asset_headers(
    *, token: str, user_agent: str, cf_cookies: str | None, assets_origin: str
) -> dict[str, str]:
    """E9 download ([v2] overrides): a navigation to assets.grok.com."""
    headers = rest_headers(
        token=token,
        user_agent=user_agent,
        cf_cookies=cf_cookies,
        origin=assets_origin,
        referer=assets_origin + "/",
        request_id=False,
    )
    headers.pop("content-type", None)
    headers.update(
        {
            "accept": "image/avif,image/webp,image/apng,image/*,*/*;q=0.8",
            "priority": "u=0, i",
            "sec-fetch-dest": "document",
            "sec-fetch-mode": "navigate",
            "sec-fetch-user": "?1",
            "upgrade-insecure-requests": "1",
        }
    )
    return headers
