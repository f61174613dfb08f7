"""E20: a LiveKit voice token for one account (protocol §11.3). The gateway only hands the token
and URL to a browser; it never speaks LiveKit's signalling itself."""

from __future__ import annotations

from typing import Any

import orjson

from core.protocol.classify import classify_http, transport_failure
from core.settings import Settings

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


class LiveKitClient:
    """`token(account_token, voice, personality, speed) -> dict`, raising a classified `UpstreamFailure`."""

    def __init__(self, settings: Settings, *, upstream: Any = None) -> None:
        self.settings = settings
        self._own = upstream is None
        self._upstream = upstream

    def _client(self) -> Any:
        if self._upstream is None:
            from infra.upstream.client import CurlUpstream

            self._upstream = CurlUpstream(self.settings)
        return self._upstream

    async def token(
        self, account_token: str, *, voice: str, personality: str, speed: float
    ) -> dict[str, str]:
        body = {
            "sessionPayload": session_payload(voice, personality, speed),
            "requestAgentDispatch": False,
            "livekitUrl": DEFAULT_URL,
            "params": {"enable_markdown_transcript": "true"},
        }
        response = await self._client().send(
            account_token,
            "POST",
            f"{self.settings.upstream_url}/rest/livekit/tokens",
            data=orjson.dumps(body),
            what="livekit token",
            time_limit=min(self.settings.total_timeout, 60.0),
        )
        if response.status_code != 200:
            raise classify_http(response.status_code, response.content)
        try:
            return parse_token(orjson.loads(response.content))
        except (ValueError, orjson.JSONDecodeError):
            raise transport_failure("livekit token: unreadable answer") from None

    async def aclose(self) -> None:
        if self._own and self._upstream is not None:
            upstream, self._upstream = self._upstream, None
            await upstream.close()
