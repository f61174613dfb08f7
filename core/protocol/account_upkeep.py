"""Account upkeep calls (docs/protocol.md#upkeep): accept the terms of service (E16 gRPC-web, then E17), set a
birth date (E19), enable NSFW content (E18 gRPC-web). Pure: request bodies and answer readers.

gRPC-web framing (same section): 1 flag byte + 4-byte big-endian length + payload; flag 0x80 is the
trailer (`grpc-status:N\\r\\ngrpc-message:…`). A missing status counts as success.
"""

from __future__ import annotations

import struct
from urllib.parse import unquote

GRPC_CONTENT_TYPE = "application/grpc-web+proto"
TOS_PATH = "/auth_mgmt.AuthManagement/SetTosAcceptedVersion"  # on accounts.x.ai
TOS_RECORD_PATH = "/rest/auth/set-tos-accepted"
NSFW_PATH = "/auth_mgmt.AuthManagement/UpdateUserFeatureControls"
BIRTH_DATE_PATH = "/rest/auth/set-birth-date"
TOS_VERSION = 5
BIRTH_DATE_LOCKED = "birth-date-change-limit-reached"


def frame(payload: bytes, flag: int = 0) -> bytes:
    return bytes((flag,)) + struct.pack(">I", len(payload)) + payload


# field 2 (varint) = 1
TOS_BODY = frame(b"\x10\x01")
# field 1 = {field 2 varint = 1}; field 2 = {field 1 string = the update-mask path}
NSFW_ENABLE_BODY = frame(b"\x0a\x02\x10\x01" + b"\x12\x1a\x0a\x18" + b"always_show_nsfw_content")


def grpc_status(body: bytes, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """(grpc-status, grpc-message) from the trailer frame, else the headers; (0, "") if absent."""
    i = 0
    while i + 5 <= len(body):
        flag = body[i]
        (length,) = struct.unpack(">I", body[i + 1 : i + 5])
        payload = body[i + 5 : i + 5 + length]
        i += 5 + length
        if flag & 0x80:
            fields = {}
            for line in payload.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
            if "grpc-status" in fields:
                return int(fields["grpc-status"] or 0), unquote(fields.get("grpc-message", ""))
    headers = headers or {}
    status = headers.get("grpc-status")
    if status is not None and status.strip().lstrip("-").isdigit():
        return int(status), unquote(headers.get("grpc-message", ""))
    return 0, ""


def birth_date_body(date: str) -> dict[str, str]:
    """`YYYY-MM-DD` -> the E19 body, at 16:00 UTC as [v3] sends it."""
    return {"birthDate": f"{date}T16:00:00.000Z"}
