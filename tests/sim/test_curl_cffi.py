"""The gateway's real client (curl_cffi, Chrome impersonation) against the simulator over plain http.

Over http:// the impersonated Chrome offers `Upgrade: h2c`; uvicorn's httptools parser would then drop
the body (docs/simulator.md). The simulator runs h11, so the JSON body must arrive intact.
"""

from __future__ import annotations

import time

import orjson
from curl_cffi.requests import AsyncSession

from infra.sim.script import expected_answer
from infra.sim.server import SimServer
from tests.sim.helpers import CHAT, STATSIG, chat_body

TOKEN = "sim-super-curl"


async def test_chrome_impersonation_posts_a_json_body_and_reads_the_stream_incrementally(
    sim: SimServer,
) -> None:
    prompt = "[user]: count slowly #sim tokens=10 delay_ms=40 think=0"
    body = chat_body(prompt, "fast")
    arrivals: list[float] = []
    lines: list[dict] = []
    async with AsyncSession(impersonate="chrome") as session:
        started = time.monotonic()
        async with session.stream(
            "POST",
            sim.url + CHAT,
            json=body,
            cookies={"sso": TOKEN, "sso-rw": TOKEN},
            headers={"x-statsig-id": STATSIG, "Content-Type": "application/json"},
        ) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line:
                    lines.append(orjson.loads(line))
                    arrivals.append(time.monotonic() - started)
    record = sim.log.last(path=CHAT)
    assert record.headers.get("upgrade") == "h2c"  # the trap is really exercised
    assert record.json == body  # and the body survived the upgrade offer
    assert "chrome" in record.headers["user-agent"].lower() or "Chrome" in record.headers["user-agent"]
    tokens = [
        f["result"]["response"]["token"] for f in lines if "token" in f.get("result", {}).get("response", {})
    ]
    assert "".join(tokens) == expected_answer(prompt, "fast")[1]
    # Incremental: the first token arrived well before the last one was written (10 x 40 ms apart).
    assert arrivals[-1] - arrivals[2] >= 0.25


async def test_upload_and_download_with_curl_cffi(sim: SimServer) -> None:
    payload = {"fileName": "a.png", "fileMimeType": "image/png", "content": "iVBORw0KGgo="}
    async with AsyncSession(impersonate="chrome") as session:
        cookies = {"sso": TOKEN, "sso-rw": TOKEN}
        up = await session.post(sim.url + "/rest/app-chat/upload-file", json=payload, cookies=cookies)
        assert up.status_code == 200
        got = await session.get(f"{sim.url}/{up.json()['fileUri']}", cookies=cookies)
        assert got.status_code == 200 and got.content == b"\x89PNG\r\n\x1a\n"
