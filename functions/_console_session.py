"""The console's session: a signed cookie, a CSRF token bound to it, and login rate limits.

* The cookie (`gg_console`, Path=/admin, HttpOnly, SameSite=Strict, Secure when the request came
  over https) holds `v1.<expiry>.<session id>.<HMAC>`. The HMAC key derives from the admin key,
  so every instance checks it without shared state and changing the admin key ends every session.
  Logout records the session id as revoked until its expiry (a record in the store).
* CSRF: every state-changing call made with the cookie must carry `x-csrf-token`, an HMAC of the
  session id the page reads from `GET /admin/api/session` (a synchronizer token a cross-site page
  cannot read), and an `Origin`, when sent, must be this host. SameSite=Strict is a second wall.
* Login: the key is compared in constant time; attempts count per client address (10 per 10
  minutes) and in total (100 per 10 minutes) in the store, so the limit holds across instances.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import Request

from core.errors import AuthenticationFailed, InvalidRequest, PermissionDenied, RateLimited
from functions._http import deps_of
from functions._wiring import Deps

COOKIE = "gg_console"
SESSION_SECONDS = 12 * 3600
PER_CLIENT, TOTAL, WINDOW = 10, 100, 600.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    expires_at: float
    csrf: str


def _key(admin_key: str) -> bytes:
    return hashlib.sha256(b"grokgate console session\x00" + admin_key.encode()).digest()


def _mac(admin_key: str, text: str) -> str:
    digest = hmac.new(_key(admin_key), text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_cookie(admin_key: str, now: float) -> str:
    body = f"v1.{int(now + SESSION_SECONDS)}.{secrets.token_urlsafe(18)}"
    return f"{body}.{_mac(admin_key, body)}"


def parse_cookie(admin_key: str, value: str, now: float) -> Session | None:
    """The session a cookie carries if its signature holds and it has not expired."""
    body, _, mac = value.rpartition(".")
    parts = body.split(".")
    if len(parts) != 3 or parts[0] != "v1" or not parts[1].isdigit():
        return None
    if not hmac.compare_digest(mac.encode(), _mac(admin_key, body).encode()):
        return None
    expires = float(parts[1])
    if expires <= now:
        return None
    return Session(parts[2], expires, _mac(admin_key, "csrf." + parts[2]))


def is_https(request: Request) -> bool:
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return proto == "https" if proto else request.url.scheme == "https"


def cookie_header(value: str, request: Request, max_age: int) -> str:
    secure = "; Secure" if is_https(request) else ""
    return f"{COOKIE}={value}; Path=/admin; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"


def check_origin(request: Request, public_url: str | None = None) -> None:
    """A browser's `Origin` on a state-changing call must be this site: the Host it asked for
    (or `X-Forwarded-Host`), or `GROKGATE_PUBLIC_URL` (behind CloudFront, which rewrites Host)."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    allowed = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")}
    if public_url:
        allowed.add(public_url.split("://", 1)[-1].split("/", 1)[0])
    if origin.split("://", 1)[-1] not in allowed - {""}:
        raise PermissionDenied("Cross-origin request refused.", code="csrf_origin_mismatch")


async def session_of(request: Request, deps: Deps) -> Session | None:
    """The request's valid, unrevoked console session, or None."""
    key = deps.settings.admin_key
    raw = request.cookies.get(COOKIE)
    if not key or not raw:
        return None
    now = deps.clock()
    session = parse_cookie(key, raw, now)
    if session is None:
        return None
    revoked, _ = await deps.records.read("revoked:" + session.id, now=now)
    return None if revoked is not None else session


def require_csrf(request: Request, session: Session, public_url: str | None = None) -> None:
    if request.method in SAFE_METHODS:
        return
    check_origin(request, public_url)
    presented = request.headers.get("x-csrf-token", "")
    if not hmac.compare_digest(presented.encode(), session.csrf.encode()):
        raise PermissionDenied(
            "This call needs the console's CSRF token in `x-csrf-token` (reload the page).",
            code="csrf_token_invalid",
        )


def client_address(request: Request) -> str:
    forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
    return forwarded or (request.client.host if request.client else "unknown")


async def check_login(request: Request, deps: Deps, presented: str) -> str:
    """A new session cookie for the right key; a counted refusal otherwise."""
    check_origin(request, deps.settings.public_url)
    now = deps.clock()
    per_client = await deps.records.count("login:" + client_address(request), now=now, window=WINDOW)
    total = await deps.records.count("login:*", now=now, window=WINDOW)
    if per_client > PER_CLIENT or total > TOTAL:
        raise RateLimited(
            "Too many login attempts; wait ten minutes.",
            code="too_many_login_attempts",
            headers={"retry-after": str(int(WINDOW))},
        )
    key = deps.settings.admin_key
    if not isinstance(presented, str) or not presented:
        raise InvalidRequest("`key` is required.", param="key")
    matches = hmac.compare_digest(presented.encode(), (key or "\x00unset").encode())
    if not key or not matches:
        raise AuthenticationFailed("Wrong admin key.", code="invalid_admin_key")
    return new_cookie(key, now)


async def revoke(deps: Deps, session: Session) -> None:
    now = deps.clock()
    await deps.records.write(
        "revoked:" + session.id, {"at": now}, version=0, now=now, ttl=max(1.0, session.expires_at - now)
    )


async def admin_deps(request: Request) -> Deps:
    """The admin key as a Bearer (scripts), or a console session cookie (with CSRF on changes).

    Sets `request.state.console` to whether the caller is the console (it never gets a full token).
    """
    deps = deps_of(request)
    key = deps.settings.admin_key
    auth = request.headers.get("authorization", "")
    presented = (
        auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-api-key", "").strip()
    )
    if not presented and COOKIE in request.cookies:
        session = await session_of(request, deps)
        if session is not None:
            require_csrf(request, session, deps.settings.public_url)
            request.state.console = True
            return deps
    # Compared even when no key is set, so timing says nothing about the configuration.
    matches = hmac.compare_digest(presented.encode(), (key or "\x00unset").encode())
    if not key or not presented or not matches:
        raise AuthenticationFailed(
            "The admin API needs the admin key (Bearer or x-api-key) or a console session.",
            code="invalid_admin_key",
        )
    request.state.console = False
    return deps
