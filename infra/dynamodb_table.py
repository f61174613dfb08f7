"""DynamoDB plumbing shared by the stores on DynamoDB: one table, its client, its calls.

boto3 is synchronous: calls run in a small thread pool; boto3 is imported on first use. A failed
condition becomes `Conflict`; any other failure `StoreUnavailable`; a missing table is created
(and waited for) once, then the call is made again.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any, TypedDict, Unpack

from core.errors import StoreUnavailable


class Conflict(Exception):
    """A conditional write lost its race; `item` is the item as it stands when the call asked
    for it (`ReturnValuesOnConditionCheckFailure`), else None."""

    def __init__(self, item: dict[str, Any] | None = None) -> None:
        self.item = item


def number(x: float) -> dict[str, str]:
    """A DynamoDB number: an int as it is, a float in its shortest exact decimal form."""
    return {"N": format(Decimal(repr(float(x))), "f") if isinstance(x, float) else str(x)}


def location(url: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The table, region and endpoint of `dynamodb://TABLE`, region and endpoint from the
    standard AWS variables (as keyword arguments of the stores' constructors)."""
    env = os.environ if environ is None else environ
    return {
        "table": url.removeprefix("dynamodb://").strip("/"),
        "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        "endpoint_url": env.get("AWS_ENDPOINT_URL_DYNAMODB") or env.get("AWS_ENDPOINT_URL") or None,
    }


def table_request(
    table: str, attributes: Sequence[tuple[str, str]], indexes: Sequence[tuple[str, str, str, str]]
) -> dict[str, Any]:
    """A `CreateTable` request: on-demand, keyed by `pk`, with the `attributes` (name, type) its
    index keys use and one GSI per (name, hash key, range key, projection type)."""
    return {
        "TableName": table,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in attributes],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": name,
                "KeySchema": [
                    {"AttributeName": hash_key, "KeyType": "HASH"},
                    {"AttributeName": range_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": projection},
            }
            for name, hash_key, range_key, projection in indexes
        ],
    }


class TableAccess(TypedDict, total=False):
    """How a store reaches its table (keyword arguments of the stores' constructors): a boto3
    `client` (else one is built for `region` and `endpoint_url`), the per-call `timeout`, and
    whether a missing table is created (`create_table`, on by default)."""

    client: Any
    region: str | None
    endpoint_url: str | None
    timeout: float
    create_table: bool


class DynamoDBTable:
    """One DynamoDB table as a store uses it: `call(op, **kwargs)` runs one API call on it.

    `definition(table)` is the `CreateTable` request made when the table is missing and
    `create_table` is set; `time_to_live` is then enabled on it too. `name` goes into the
    `StoreUnavailable` message; `workers` bounds the calls in flight (and the HTTP pool).
    """

    def __init__(
        self,
        table: str,
        definition: Callable[[str], dict[str, Any]],
        *,
        name: str,
        workers: int,
        time_to_live: dict[str, Any] | None = None,
        **access: Unpack[TableAccess],
    ) -> None:
        self.table = table
        self._definition = definition
        self._name = name
        self._workers = workers
        self._client = access.get("client")
        self._region = access.get("region")
        self._endpoint = access.get("endpoint_url")
        self._timeout = access.get("timeout", 5.0)
        self._create = access.get("create_table", True)
        self._time_to_live = time_to_live
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="dynamodb-" + name.replace(" ", "-")
        )

    def _boto(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                connect_timeout=min(self._timeout, 3.0),
                read_timeout=self._timeout,
                retries={"max_attempts": 2, "mode": "standard"},
                max_pool_connections=self._workers,
            )
            self._client = boto3.client(
                "dynamodb", region_name=self._region, endpoint_url=self._endpoint, config=config
            )
        return self._client

    async def call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        """`op` (a boto3 client method) on the table; raises `Conflict` or `StoreUnavailable`."""

        def call() -> dict[str, Any]:
            from botocore.exceptions import BotoCoreError, ClientError

            client = self._boto()
            for attempt in (0, 1):
                try:
                    result: dict[str, Any] = getattr(client, op)(TableName=self.table, **kwargs)
                    return result
                except ClientError as exc:
                    code = exc.response.get("Error", {}).get("Code", "")
                    if code == "ConditionalCheckFailedException":
                        raise Conflict(exc.response.get("Item")) from None
                    if code == "ResourceNotFoundException" and self._create and attempt == 0:
                        self._create_table(client)
                        continue
                    raise StoreUnavailable(
                        f"The {self._name} is unavailable ({code or 'ClientError'})."
                    ) from None
                except BotoCoreError as exc:
                    raise StoreUnavailable(
                        f"The {self._name} is unavailable ({type(exc).__name__})."
                    ) from None
            raise StoreUnavailable(f"The {self._name} is unavailable (no table).")

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _create_table(self, client: Any) -> None:
        from botocore.exceptions import ClientError

        try:
            client.create_table(**self._definition(self.table))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
        client.get_waiter("table_exists").wait(
            TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        if self._time_to_live is None:
            return
        try:
            client.update_time_to_live(TableName=self.table, TimeToLiveSpecification=self._time_to_live)
        except ClientError as exc:  # already enabled (by another instance, or by IaC)
            if exc.response.get("Error", {}).get("Code") != "ValidationException":
                raise

    async def ensure(self) -> None:
        """Create the table now if it is missing."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._create_table, self._boto())

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False)
