"""The images deployable: image generation and edits, and the stored-media download route
(functions/routes/images.py). Buffered: Mangum on AWS (`handler`), an ASGI app on Vercel (`app`)."""

from __future__ import annotations

from functions._app import build_app
from functions._lambda import lambda_handler
from functions.routes import images

routes = images.routes
app = build_app(routes)
handler = lambda_handler(app)
