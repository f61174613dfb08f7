"""The chat deployable: OpenAI chat completions, the Responses API and Anthropic Messages, streamed.

All three dialects are one deployable (vercel.json rewrites their paths to it; on AWS it is the
streaming function): they share the chat service, the answer lifecycle and the SSE loop. The
routes live in functions/routes/.
"""

from __future__ import annotations

from functions._app import build_app
from functions.routes import chat, messages, responses

routes = [*chat.routes, *responses.routes, *messages.routes]
app = build_app(routes)
