"""gRPC-web calls (docs/protocol.md#upkeep): weekly credits (E12), ToS (E16) and the NSFW toggle (E18).

A frame is 1 flag byte + 4-byte big-endian length + payload; 0x00 carries a message, 0x80 the
trailers as HTTP/1-style header lines. Requests are checked byte for byte against what the web app sends.
"""

from __future__ import annotations

import struct
import time
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from infra.sim.accounts import Account
from infra.sim.gate import admit
from infra.sim.state import SimState

EMPTY_MESSAGE = b"\x00\x00\x00\x00\x00"
TOS_REQUEST = b"\x00\x00\x00\x00\x02\x10\x01"
_NSFW_MASK = b"\x12\x1a\x0a\x18always_show_nsfw_content"
NSFW_ENABLE = b"\x00\x00\x00\x00\x20\x0a\x02\x10\x01" + _NSFW_MASK
NSFW_DISABLE = b"\x00\x00\x00\x00\x20\x0a\x02\x10\x00" + _NSFW_MASK
CONTENT_TYPE = "application/grpc-web+proto"


def frame(flag: int, payload: bytes) -> bytes:
    return bytes((flag,)) + struct.pack(">I", len(payload)) + payload


def trailer(status: int, message: str = "") -> bytes:
    text = f"grpc-status:{status}\r\n" + (f"grpc-message:{quote(message)}\r\n" if message else "")
    return frame(0x80, text.encode())


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split a gRPC-web body into (flag, payload) frames; raises ValueError on truncation."""
    out, i = [], 0
    while i < len(data):
        if i + 5 > len(data):
            raise ValueError("truncated frame header")
        (length,) = struct.unpack(">I", data[i + 1 : i + 5])
        if i + 5 + length > len(data):
            raise ValueError("truncated frame payload")
        out.append((data[i], data[i + 5 : i + 5 + length]))
        i += 5 + length
    return out


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _field_float(number: int, value: float) -> bytes:
    return _varint(number << 3 | 5) + struct.pack("<f", value)


def _field_bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _timestamp(seconds: int, nanos: int) -> bytes:
    return _field_varint(1, seconds) + (_field_varint(2, nanos) if nanos else b"")


def credits_message(account: Account, now: float | None = None) -> bytes:
    """GetGrokCreditsConfig response: 11 % used over a 7-day period for paid tiers (the captured fixture)."""
    now = time.time() if now is None else now
    start = int(now) - 2 * 86400
    if account.tier == "basic":  # free accounts: coarse period and no usage field
        config = _field_bytes(4, _timestamp(start, 0)) + _field_bytes(5, _timestamp(start + 7 * 86400, 0))
    else:
        breakdown = b"".join(
            _field_bytes(7, _field_varint(1, code) + _field_float(2, pct))
            for code, pct in ((5, 10.0), (4, 1.0), (2, 0.0))
        )
        config = (
            _field_float(1, 11.0)
            + _field_bytes(4, _timestamp(start, 123_000_000))
            + _field_bytes(5, _timestamp(start + 7 * 86400, 123_000_000))
            + breakdown
        )
    return _field_bytes(1, config)


def _reply(body: bytes) -> Response:
    return Response(
        body, media_type=CONTENT_TYPE, headers={"access-control-expose-headers": "grpc-status,grpc-message"}
    )


def routes(state: SimState) -> list[Route]:
    def check(request: Request, body: bytes, expected: tuple[bytes, ...]) -> Response | None:
        if request.headers.get("content-type", "").split(";")[0].strip() != CONTENT_TYPE:
            return Response("unsupported content type", 415, media_type="text/plain")
        if body not in expected:
            return _reply(trailer(3, "invalid request message"))
        return None

    async def credits(request: Request) -> Response:
        account = await admit(state, request)
        if isinstance(account, Response):
            return account
        problem = check(request, await request.body(), (EMPTY_MESSAGE,))
        if problem:
            return problem
        if account.grpc_denied:
            return _reply(trailer(7, "permission denied"))
        return _reply(frame(0, credits_message(account, state.accounts.now())) + trailer(0))

    async def accept_tos(request: Request) -> Response:
        account = await admit(state, request)
        if isinstance(account, Response):
            return account
        problem = check(request, await request.body(), (TOS_REQUEST,))
        if problem:
            return problem
        if account.grpc_denied:
            return _reply(trailer(7, "permission denied"))
        account.tos_version = account.tos_version or 1
        return _reply(EMPTY_MESSAGE + trailer(0))

    async def feature_controls(request: Request) -> Response:
        account = await admit(state, request, statsig=True)
        if isinstance(account, Response):
            return account
        body = await request.body()
        problem = check(request, body, (NSFW_ENABLE, NSFW_DISABLE))
        if problem:
            return problem
        if account.grpc_denied:
            return _reply(trailer(7, "permission denied"))
        account.nsfw = body == NSFW_ENABLE
        return _reply(EMPTY_MESSAGE + trailer(0))

    return [
        Route("/grok_api_v2.GrokBuildBilling/GetGrokCreditsConfig", credits, methods=["POST"]),
        Route("/auth_mgmt.AuthManagement/SetTosAcceptedVersion", accept_tos, methods=["POST"]),
        Route("/auth_mgmt.AuthManagement/UpdateUserFeatureControls", feature_controls, methods=["POST"]),
    ]
