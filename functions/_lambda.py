"""AWS Lambda entry for the buffered deployables: Mangum behind an HTTP API.

Streaming deployables (chat) do not come through here: Mangum collects every body chunk and
returns one dict, so SSE would arrive all at once. They run under uvicorn behind the Lambda Web
Adapter instead (`run.sh`, see docs/deploy-aws.md). Each buffered module ends with
`handler = lambda_handler(app)`; serverless.yml names it `functions/<module>.handler`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp

if TYPE_CHECKING:  # imported with the first invocation: Vercel and the local app never need it
    from mangum import Mangum

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def lambda_handler(app: ASGIApp) -> LambdaHandler:
    """A Lambda handler for an HTTP API (payload 2.0) or Function URL event.

    The adapter is built on the first invocation, not at import: Mangum's constructor creates and
    installs an event loop, which importing a deployable (tests, Vercel, the local app) must not
    do. `lifespan="off"`: Mangum would run startup and shutdown around every invocation, and
    `build_app` needs neither; dependencies are lazy per-process singletons (`_wiring.get_deps`),
    built on the first request, in the INVOKE phase where SSM can be read.
    """
    adapter: Mangum | None = None

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        nonlocal adapter
        if adapter is None:
            from mangum import Mangum

            adapter = Mangum(app, lifespan="off")
        return adapter(event, context)

    return handler
