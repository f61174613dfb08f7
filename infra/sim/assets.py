"""Files: uploads (E5 JSON, E6 multipart), the asset list and delete (E7, E8) and downloads (E9).

Downloads live on the assets host (https://assets.grok.com in production). The simulator serves that
host's `/users/...` paths from the same server; absolute URLs it hands out use the configured assets base.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from infra.sim import pixels


@dataclass(slots=True)
class Asset:
    asset_id: str
    owner: str  # user id (the `users/<uid>/` path segment)
    path: str  # key relative to the assets host, without a leading slash
    mime: str
    data: bytes
    name: str
    source: str  # upload | generated
    created: float


def iso(ts: float | None = None) -> str:
    return (
        datetime.fromtimestamp(ts if ts is not None else time.time(), UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class AssetStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_path: dict[str, Asset] = {}
        self._by_id: dict[str, Asset] = {}

    def add(
        self,
        owner: str,
        path: str,
        data: bytes,
        mime: str | None = None,
        name: str = "",
        source: str = "generated",
        asset_id: str | None = None,
    ) -> Asset:
        asset = Asset(
            asset_id=asset_id or str(uuid.uuid4()),
            owner=owner,
            path=path.lstrip("/"),
            mime=mime or pixels.sniff_mime(data),
            data=data,
            name=name or path.rsplit("/", 1)[-1],
            source=source,
            created=time.time(),
        )
        with self._lock:
            self._by_path[asset.path] = asset
            self._by_id[asset.asset_id] = asset
        return asset

    def upload(self, owner: str, data: bytes, mime: str, name: str) -> Asset:
        file_id = str(uuid.uuid4())
        return self.add(owner, f"users/{owner}/{file_id}/content", data, mime, name, "upload", file_id)

    def generated_image(self, owner: str, path: str, seed: int = 0) -> None:
        if path not in self._by_path:
            self.add(owner, path, pixels.sample_jpeg(seed % 16), "image/jpeg")

    def by_path(self, path: str) -> Asset | None:
        return self._by_path.get(path.lstrip("/"))

    def by_id(self, asset_id: str) -> Asset | None:
        return self._by_id.get(asset_id)

    def delete(self, asset_id: str) -> bool:
        with self._lock:
            asset = self._by_id.pop(asset_id, None)
            if asset is None:
                return False
            self._by_path.pop(asset.path, None)
            return True

    def owned_by(self, owner: str) -> list[Asset]:
        with self._lock:
            return sorted((a for a in self._by_id.values() if a.owner == owner), key=lambda a: -a.created)

    def clear(self) -> None:
        with self._lock:
            self._by_path.clear()
            self._by_id.clear()


def parse_multipart(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """Split a multipart/form-data body into (disposition params + content-type, bytes) parts."""
    boundary = ""
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        return []
    parts = []
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        info: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-disposition":
                for item in value.split(";")[1:]:
                    k, _, v = item.strip().partition("=")
                    info[k.lower()] = v.strip('"')
            elif name.strip().lower() == "content-type":
                info["content-type"] = value.strip()
        parts.append((info, data.removesuffix(b"\r\n")))
    return parts
