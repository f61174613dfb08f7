"""E20: a LiveKit voice token for one account (docs/protocol.md#voice). The gateway only hands the token
and URL to a browser; it never speaks LiveKit's signalling itself."""

from __future__ import annotations

from typing import Any

import orjson

from core.protocol.classify import transport_failure
from infra.upstream.account_call import AccountCall

DEFAULT_URL = "wss://livekit.grok.com"


def session_payload(voice: str, personality: str, speed: float) -> str:
    return orjson.dumps(
        {
            "voice": voice,
            "personality": personality,
            "playback_speed": speed,
            "enable_vision": False,
            "turn_detection": {"type": "server_vad"},
        }
    ).decode()


def parse_token(body: Any) -> dict[str, str]:
    """The answer's token, URL, participant and room, under any of the names the upstream uses."""
    if not isinstance(body, dict) or not isinstance(body.get("token"), str) or not body["token"]:
        raise ValueError("no token")

    def first(*names: str) -> str:
        return next((str(body[n]) for n in names if body.get(n)), "")

    url = first("livekitUrl", "livekit_url", "url") or DEFAULT_URL
    return {
        "token": body["token"],
        "url": url,
        "participant_name": first("participantName", "participant_name", "identity"),
        "room_name": first("roomName", "room_name", "room"),
        "rtc_url": f"{url.rstrip('/')}/rtc?auto_subscribe=1&sdk=js&version=2.11.4&protocol=15&access_token="
        + body["token"],
    }


class LiveKitClient(AccountCall):
    """`token(account_token, voice=, personality=, speed=) -> dict`, raising a classified `UpstreamFailure`."""

    async def token(
        self, account_token: str, *, voice: str, personality: str, speed: float
    ) -> dict[str, str]:
        body = {
            "sessionPayload": session_payload(voice, personality, speed),
            "requestAgentDispatch": False,
            "livekitUrl": DEFAULT_URL,
            "params": {"enable_markdown_transcript": "true"},
        }
        answer = await self.post_json(account_token, "/rest/livekit/tokens", body, what="livekit token")
        try:
            return parse_token(answer)
        except ValueError:
            raise transport_failure("livekit token: unreadable answer") from None
