"""The local all-in-one app: every route group in one process (development, small installs)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from functions import admin, chat, cron, images, models, videos
from functions._app import build_app
from functions._wiring import Deps


def all_routes() -> list[BaseRoute]:
    """Every deployable's routes. Each deployable keeps its own `routes` list."""
    groups = [models.routes, chat.routes]
    groups += [images.routes, videos.routes, admin.routes, cron.routes]
    return [route for group in groups for route in group]


def create_app(deps: Deps | None = None) -> Starlette:
    return build_app(all_routes(), deps=deps)
