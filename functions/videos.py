"""The videos deployable: OpenAI's Videos API, submit and poll (functions/routes/videos.py); the
runners do the work. Buffered: Mangum on AWS (`handler`), an ASGI app on Vercel (`app`)."""

from __future__ import annotations

from functions._app import build_app
from functions._lambda import lambda_handler
from functions.routes import videos

routes = videos.routes
app = build_app(routes)
handler = lambda_handler(app)
