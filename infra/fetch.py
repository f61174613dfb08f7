"""Client-supplied URLs (image and file parts), fetched without any account cookie, behind an SSRF guard.

The guard sits where connections are made (an httpcore network backend), so every connection,
redirects included, is checked against the address it actually dials: no private, loopback,
link-local, shared (CGNAT), reserved, multicast or cloud-metadata address unless
`allow_private_fetch` is set. The checked address is the one connected to, so a DNS answer that
changes between check and connect (rebinding) cannot slip through. Redirects are followed by hand
(at most 5, http/https only); size and time are limited by `fetch_max_bytes` and `fetch_timeout`.

Tests inject `resolver` (host -> addresses) and `allow` (networks treated as public) to model
public hosts offline.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import httpcore
import httpx
import idna

from core.errors import InvalidRequest
from core.ports import FetchedFile
from core.settings import Settings
from infra.special_addresses import Network, is_public, special_block

Resolver = Callable[[str, int], Awaitable[list[str]]]
MAX_REDIRECTS = 5


class Refused(Exception):
    """A connection the guard would not make."""


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, and dials the checked address."""

    def __init__(self, resolver: Resolver, allow_private: bool, allow: Sequence[Network]) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._resolver = resolver
        self._allow_private = allow_private
        self._allow = allow

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            try:
                addresses = await self._resolver(host, port)
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}")
        if not self._allow_private:
            for address in addresses:
                if not is_public(address, self._allow):
                    raise Refused(f"{host} resolves to {address}, {special_block(address)}")
        return await self._inner.connect_tcp(addresses[0], port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Refused("unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, backend: GuardedBackend) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(cafile=certifi.where()),
            network_backend=backend,
            max_connections=32,
        )


class SafeFetcher:
    """The `UrlFetcher` port with httpx. Args: settings (limits, `allow_private_fetch`);
    resolver and allow (tests: model public hosts offline)."""

    def __init__(
        self, settings: Settings, *, resolver: Resolver | None = None, allow: Sequence[str] = ()
    ) -> None:
        self.settings = settings
        backend = GuardedBackend(
            resolver or system_resolver,
            settings.allow_private_fetch,
            [ipaddress.ip_network(a) for a in allow],
        )
        self._client = httpx.AsyncClient(
            transport=GuardedTransport(backend),
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(settings.fetch_timeout),
            headers={"user-agent": "grokgate-fetch/1", "accept": "*/*"},
        )

    async def fetch(self, url: str, *, param: str = "url") -> FetchedFile:
        try:
            async with asyncio.timeout(self.settings.fetch_timeout):
                return await self._fetch(url, param)
        except TimeoutError:
            raise InvalidRequest(
                f"'{param}': fetching the URL took longer than {self.settings.fetch_timeout:g} s.",
                param=param,
            ) from None

    async def _fetch(self, url: str, param: str) -> FetchedFile:
        limit = self.settings.fetch_max_bytes
        for _ in range(MAX_REDIRECTS + 1):
            target = client_url(url, param)
            try:
                async with self._client.stream("GET", target) as response:
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        try:
                            url = urljoin(url, location)
                        except ValueError:
                            url = location  # client_url names what is wrong with it
                        continue
                    if response.status_code != 200:
                        raise InvalidRequest(
                            f"'{param}': the URL answered HTTP {response.status_code}.", param=param
                        )
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise _too_large(param, limit)
                    data = bytearray()
                    async for chunk in response.aiter_bytes():
                        data += chunk
                        if len(data) > limit:
                            raise _too_large(param, limit)
                    mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    return FetchedFile(bytes(data), mime)
            except Refused as exc:
                raise InvalidRequest(
                    f"'{param}': refusing to fetch a private or internal address ({exc}).", param=param
                ) from None
            except (ValueError, UnicodeError, httpx.InvalidURL) as exc:  # what the parse let through
                raise InvalidRequest(
                    f"'{param}': not a valid URL ({type(exc).__name__}).", param=param
                ) from None
            except httpx.HTTPError as exc:
                cause = exc.__cause__ or exc.__context__
                if isinstance(cause, Refused):
                    raise InvalidRequest(
                        f"'{param}': refusing to fetch a private or internal address ({cause}).", param=param
                    ) from None
                if str(exc).startswith("Invalid URL in location header"):
                    raise InvalidRequest(
                        f"'{param}': the URL redirects to an invalid URL.", param=param
                    ) from None
                raise InvalidRequest(
                    f"'{param}': the URL could not be fetched ({type(exc).__name__}).", param=param
                ) from None
        raise InvalidRequest(f"'{param}': too many redirects.", param=param)

    async def aclose(self) -> None:
        await self._client.aclose()


def client_url(url: str, param: str) -> httpx.URL:
    """`url` parsed, or a 400 naming `param` and the fault: http(s) only, a host, a port that
    exists, no control characters, labels IDNA accepts (parse errors never escape as a 500)."""
    try:
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise InvalidRequest(f"'{param}': only http(s) URLs are fetched.", param=param)
        parsed = httpx.URL(url)
        port, host = parsed.port, parsed.host  # .host decodes A-labels: bad ones raise here
    except (ValueError, UnicodeError, httpx.InvalidURL) as exc:
        detail = str(exc).split(" (", 1)[0] or type(exc).__name__
        raise InvalidRequest(f"'{param}': not a valid URL ({detail}).", param=param) from None
    if not host:
        raise InvalidRequest(f"'{param}': not a valid URL (no host).", param=param)
    if port is not None and not 0 < port < 65536:
        raise InvalidRequest(f"'{param}': not a valid URL (port {port}).", param=param)
    fault = _host_fault(parsed.raw_host.decode("ascii", "replace"))
    if fault:
        raise InvalidRequest(f"'{param}': not a valid URL ({fault}).", param=param)
    return parsed


def _host_fault(host: str) -> str | None:
    """What DNS would refuse in a host name (its length, an empty label, a broken A-label)."""
    if host.startswith("[") or ":" in host:
        return None  # an IPv6 literal, checked by the parser
    labels = host.removesuffix(".").split(".")
    if len(host) > 253:
        return "the host name is longer than 253 characters"
    for label in labels:
        if not 0 < len(label) < 64:
            return "a host label is empty or longer than 63 characters"
        if label[:4].lower() == "xn--":
            try:
                idna.encode(label)
            except (idna.IDNAError, UnicodeError):
                return f"the A-label {label!r} is malformed"
    return None


def _too_large(param: str, limit: int) -> InvalidRequest:
    return InvalidRequest(f"'{param}': the file is larger than {limit} bytes.", param=param)
