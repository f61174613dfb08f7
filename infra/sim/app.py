"""The simulator's ASGI app: every host's routes (grok.com, assets.grok.com, accounts.x.ai, FlareSolverr)
on one router, behind the request log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Router
from starlette.types import ASGIApp

from infra.sim import account_api, chat, files, flaresolverr, gateway_ws, grpcweb, imagine_ws, media
from infra.sim.requestlog import LogMiddleware
from infra.sim.state import SimState
from infra.sim.wire import json_response


async def _not_found(request: Request) -> Response:
    return json_response({"code": 5, "message": f"Not Found: {request.url.path}", "details": []}, 404)


def build_app(state: SimState) -> ASGIApp:
    routes: list[BaseRoute] = [
        *chat.routes(state),
        *media.routes(state),
        *files.routes(state),
        *account_api.routes(state),
        *grpcweb.routes(state),
        *imagine_ws.routes(state),
        *gateway_ws.routes(state),
        *flaresolverr.routes(state),
    ]
    router = Router(routes=routes, default=_not_found_app, redirect_slashes=False)
    return LogMiddleware(router, state.log)


async def _not_found_app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] == "http":
        await (await _not_found(Request(scope, receive)))(scope, receive, send)
    elif scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
