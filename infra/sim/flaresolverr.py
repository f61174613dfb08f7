"""A FlareSolverr-compatible `POST /v1` that hands out the `cf_clearance` the simulator accepts.

Point the gateway's FlareSolverr URL at the simulator's base URL. The returned cookie only clears
challenges when sent with the returned `userAgent` (unless `config.clearance_binds_ua` is off).
"""

from __future__ import annotations

import secrets
import time

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from infra.sim.state import SimState
from infra.sim.wire import json_response


def routes(state: SimState) -> list[Route]:
    async def solve(request: Request) -> Response:
        started = int(time.time() * 1000)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or body.get("cmd") not in ("request.get", "request.post"):
            return json_response(
                {"status": "error", "message": "Error: Request parameter 'cmd' = 'None' is invalid."}, 500
            )
        url = str(body.get("url") or "https://grok.com")
        user_agent = state.config.solver_user_agent
        state.solves += 1
        state.solve_requests.append({"url": url, "proxy": body.get("proxy")})
        clearance, expires = state.issue_clearance(user_agent)
        cookies = [
            {"name": "cf_clearance", "value": clearance, "domain": ".grok.com", "path": "/",
             "expires": expires, "httpOnly": True, "secure": True, "sameSite": "None"},
            {"name": "__cf_bm", "value": secrets.token_urlsafe(32), "domain": ".grok.com", "path": "/",
             "expires": expires, "httpOnly": True, "secure": True, "sameSite": "None"},
        ]  # fmt: skip
        return json_response(
            {
                "status": "ok",
                "message": "Challenge solved!",
                "solution": {
                    "url": url,
                    "status": 200,
                    "headers": {},
                    "response": "<html><head></head><body></body></html>",
                    "cookies": cookies,
                    "userAgent": user_agent,
                },
                "startTimestamp": started,
                "endTimestamp": int(time.time() * 1000),
                "version": "3.3.21",
            }
        )

    return [Route("/v1", solve, methods=["POST"])]
