"""AWS Lambda entry for the buffered deployables: Mangum behind an HTTP API.

Streaming deployables (chat) do not come through here: Mangum collects every body chunk and
returns one dict, so SSE would arrive all at once. They run under uvicorn behind the Lambda Web
Adapter instead (`run.sh`, see docs/deploy-aws.md). Each buffered module ends with
`handler = lambda_handler(app)`; serverless.yml names it `functions/<module>.handler`.
"""

from __future__ import annotations

from mangum import Mangum
from starlette.types import ASGIApp


def lambda_handler(app: ASGIApp) -> Mangum:
    """A Lambda handler for an HTTP API (payload 2.0) or Function URL event.

    `lifespan="off"`: Mangum would run startup and shutdown around every invocation, and
    `build_app` needs neither; dependencies are lazy per-process singletons (`_wiring.get_deps`),
    built on the first request, which is in the INVOKE phase where SSM can be read.
    """
    return Mangum(app, lifespan="off")
