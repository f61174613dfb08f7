"""Shared wire helpers: JSON responses, the real service's rejection bodies, and the NDJSON streamer."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

INVALID_CREDENTIALS = {
    "code": 16,
    "message": "Failed to look up session ID. [WKE=unauthenticated:invalid-credentials]",
    "details": [],
}
BLOCKED = {"error": {"code": "blocked-user", "message": "User is blocked", "details": []}}
ANTI_BOT = {"error": {"code": 7, "message": "Request rejected by anti-bot rules.", "details": []}}
RATE_LIMITED = {"error": {"code": 8, "message": "Too many requests", "details": []}}
USAGE_LIMIT = {
    "result": {"response": {"error": {"message": "You've reached your usage limit. Please try again later."}}}
}
UNAVAILABLE = {
    "error": {
        "code": 14,
        "message": "upstream connect error or disconnect/reset before headers",
        "details": [],
    }
}

CHALLENGE_HTML = """<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8"><meta name="robots" content="noindex,nofollow">
</head><body><div class="main-wrapper" role="main"><div class="main-content">
<h1 class="zone-name-title h1">grok.com</h1><h2 class="h2" id="challenge-running">Checking if the site connection is secure</h2>
<noscript><div class="h2">Enable JavaScript and cookies to continue</div></noscript></div></div>
<script src="/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1?ray=sim"></script></body></html>"""


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def bad_request(message: str, status: int = 400, code: int = 3) -> Response:
    """A gRPC-gateway style error, the shape grok.com uses for rejected REST calls."""
    return json_response({"code": code, "message": message, "details": []}, status)


def challenge_response() -> Response:
    return Response(
        CHALLENGE_HTML,
        status_code=403,
        media_type="text/html; charset=UTF-8",
        headers={"cf-mitigated": "challenge", "server": "cloudflare", "cf-ray": "8f00000000000000-SIM"},
    )


def b64decode_loose(value: str) -> bytes | None:
    """Standard base64 with or without padding (the two statsig styles), or None."""
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


class SimDrop(Exception):
    """Raised inside a response to cut the connection mid-stream (the `midstream_drop` directive)."""


class NDJSONStream:
    """Streams prepared lines. Without per-token pacing it sends everything in one write, which is
    what lets one core serve hundreds of 200-token answers a second."""

    __slots__ = ("delays", "drop_after", "headers", "lines", "ttfb")

    def __init__(
        self,
        lines: Sequence[bytes],
        delays: Sequence[float] | None = None,
        drop_after: int | None = None,
        ttfb: float = 0.0,
    ) -> None:
        self.lines = lines
        self.delays = delays  # seconds to wait before each line, or None for a single write
        self.drop_after = drop_after  # number of lines sent before the connection is cut
        self.ttfb = ttfb

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.ttfb:
            await asyncio.sleep(self.ttfb)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store")],
            }
        )
        if self.delays is None and self.drop_after is None:
            await send({"type": "http.response.body", "body": b"".join(self.lines), "more_body": False})
            return
        for i, line in enumerate(self.lines):
            if self.drop_after is not None and i >= self.drop_after:
                raise SimDrop("midstream_drop directive")
            if self.delays and self.delays[i]:
                await asyncio.sleep(self.delays[i])
            await send({"type": "http.response.body", "body": line, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
