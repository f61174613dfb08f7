"""The `stepfunctions` runner's starter: one execution of the video state machine per job.

The execution is named after the job id. A Standard machine never runs two executions of one
name (for 90 days): a repeated start with the same input while the first runs returns that
execution, and once it has ended the start is refused (ExecutionAlreadyExists). Either way a
repeated start (a client's retried create, two instances racing) is a no-op. boto3 is imported
on first use.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

from core.errors import StoreUnavailable
from core.settings import SettingsError

log = logging.getLogger("grokgate.jobs")


def client() -> Any:
    """A Step Functions client for this process's region (and endpoint, under a local emulator)."""
    import boto3

    env = os.environ
    return boto3.client(
        "stepfunctions",
        region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint_url=env.get("AWS_ENDPOINT_URL_SFN") or env.get("AWS_ENDPOINT_URL") or None,
    )


def start_sync(client: Any, state_machine: str, job_id: str) -> str | None:
    """Start the job's execution: its ARN (the running one's if it was started before), or None
    if an execution of that name has already ended."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        started = client.start_execution(
            stateMachineArn=state_machine, name=job_id, input=json.dumps({"job_id": job_id})
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return None
        raise StoreUnavailable(
            f"Step Functions refused the video job ({exc.response['Error'].get('Code')})."
        ) from None
    except BotoCoreError as exc:
        raise StoreUnavailable(f"Step Functions is unavailable ({type(exc).__name__}).") from None
    return str(started["executionArn"])


async def start_execution(client: Any, machine: str | None, job_id: str) -> str | None:
    if not machine:
        raise SettingsError(
            "GROKGATE_VIDEO_RUNNER=stepfunctions needs GROKGATE_VIDEO_STATE_MACHINE (its ARN)"
        )
    return await asyncio.get_running_loop().run_in_executor(None, start_sync, client, machine, job_id)
