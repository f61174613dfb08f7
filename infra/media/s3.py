"""The MediaStore on S3 (`s3://bucket/prefix`): objects written with their content type, links
are presigned GET URLs valid for `media_ttl` seconds. boto3 is imported on first use (cold start);
its calls run in a thread; botocore errors become `StoreUnavailable` here.
Endpoint and credentials come from the usual AWS variables (`AWS_ENDPOINT_URL_S3` for MinIO, R2…).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

from core.errors import StoreUnavailable
from core.ports import MediaBlob, MediaItem
from core.settings import Settings
from infra.media.local import EXTENSIONS, MEDIA_ID, mime_of

CHUNK = 256 * 1024
_S3_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(.*))?$")


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, prefix ending in '/' or empty)."""
    match = _S3_URL.match(url)
    if match is None:
        raise ValueError(f"expected s3://bucket/prefix, got {url!r}")
    prefix = (match.group(2) or "").strip("/")
    return match.group(1), f"{prefix}/" if prefix else ""


class S3MediaStore:
    """`MediaStore` on an S3 bucket. `client` is a boto3 S3 client (built lazily when None)."""

    def __init__(
        self, bucket: str, prefix: str = "", *, ttl: int = 3600, client: Any = None, region: str | None = None
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.ttl = ttl
        self.region = region
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> S3MediaStore:
        bucket, prefix = parse_s3_url(settings.media)
        return cls(bucket, prefix, ttl=settings.media_ttl)

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                region_name=self.region,
                config=Config(signature_version="s3v4", retries={"max_attempts": 3}),
            )
        return self._client

    def _key(self, media_id: str) -> str:
        if not MEDIA_ID.match(media_id):
            raise ValueError("not a media id")
        return self.prefix + media_id

    async def _call(self, fn: Any, /, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(fn, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound", "NoSuchLifecycleConfiguration"):
                raise KeyError(code) from None
            raise StoreUnavailable(f"The media bucket refused the request ({code or 'error'}).") from None
        except BotoCoreError as exc:
            raise StoreUnavailable(f"The media bucket is unavailable ({type(exc).__name__}).") from None

    async def put(self, data: bytes, mime: str) -> str:
        media_id = f"{secrets.token_hex(16)}.{EXTENSIONS.get(mime.split(';')[0].strip(), 'bin')}"
        key = self._key(media_id)
        await self._call(
            self.client.put_object, Bucket=self.bucket, Key=key, Body=data, ContentType=mime_of(media_id)
        )
        return media_id

    async def link(self, media_id: str, base_url: str, ttl: int | None = None) -> str:
        url: str = await self._call(
            self.client.generate_presigned_url,
            ClientMethod="get_object",
            Params={"Bucket": self.bucket, "Key": self._key(media_id)},
            ExpiresIn=ttl or self.ttl,
        )
        return url

    async def redirect(self, media_id: str) -> str | None:
        return await self.link(media_id, "")

    async def open(self, media_id: str) -> MediaBlob | None:
        if not MEDIA_ID.match(media_id):
            return None
        try:
            answer = await self._call(self.client.get_object, Bucket=self.bucket, Key=self._key(media_id))
        except KeyError:
            return None
        body = answer["Body"]
        modified = answer.get("LastModified")
        return MediaBlob(
            _chunks(body),
            answer.get("ContentType") or mime_of(media_id),
            answer["ContentLength"],
            modified.timestamp() if modified is not None else 0.0,
        )

    async def expires_by_itself(self, retention: float) -> bool:
        """Whether the bucket's lifecycle rules expire this prefix's objects within `retention`
        (then S3 deletes them and the scheduled sweep leaves the bucket alone)."""
        try:
            config = await self._call(self.client.get_bucket_lifecycle_configuration, Bucket=self.bucket)
        except (KeyError, StoreUnavailable):
            return False  # no configuration (or no right to read it): the sweep does the work
        for rule in config.get("Rules", []):
            prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix", ""))
            days = rule.get("Expiration", {}).get("Days")
            covers = rule.get("Status") == "Enabled" and days and self.prefix.startswith(prefix or "")
            if covers and (not retention or int(days) * 86400 <= retention + 86400):
                return True
        return False

    async def inventory(self, *, limit: int = 500) -> tuple[list[MediaItem], int, int]:
        items: list[MediaItem] = []
        token: str | None = None
        while True:  # every page: the count and the total need them all
            args = {
                "Bucket": self.bucket,
                "Prefix": self.prefix,
                **({"ContinuationToken": token} if token else {}),
            }
            page = await self._call(self.client.list_objects_v2, **args)
            for obj in page.get("Contents", []):
                name = obj["Key"][len(self.prefix) :]
                if MEDIA_ID.match(name):
                    items.append(MediaItem(name, int(obj["Size"]), obj["LastModified"].timestamp()))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                break
        items.sort(key=lambda m: (-m.created_at, m.id))
        return items[:limit], len(items), sum(m.size for m in items)

    async def delete(self, media_id: str) -> bool:
        if not MEDIA_ID.match(media_id):
            return False
        try:
            await self._call(self.client.head_object, Bucket=self.bucket, Key=self._key(media_id))
        except KeyError:
            return False
        await self._call(self.client.delete_object, Bucket=self.bucket, Key=self._key(media_id))
        return True

    async def aclose(self) -> None:
        return None


async def _chunks(body: Any) -> AsyncIterator[bytes]:
    try:
        while True:
            chunk = await asyncio.to_thread(body.read, CHUNK)
            if not chunk:
                return
            yield chunk
    finally:
        body.close()
