"""The MediaStore on a local folder, with HMAC-signed links the gateway itself serves.

A link is `{base}/v1/files/{id}/content?exp={unix}&sig={hex}` where `sig` is
HMAC-SHA256(secret, "{id}\\n{exp}"). The route checks it in constant time and refuses expired
links, so a link can be handed to a browser without the API key, and only until it expires.

The secret is `media_secret`, else derived from the admin key, else a random secret made once
per install and kept (mode 0600) next to the files; it is never a constant. Ids are 32 random
hex digits plus an extension, so a path can never leave the folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from core.errors import StoreUnavailable
from core.ports import MediaBlob, MediaItem
from core.settings import Settings

EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
}
MIMES = {ext: mime for mime, ext in EXTENSIONS.items()}
MEDIA_ID = re.compile(r"^[0-9a-f]{32}\.(?:jpg|png|webp|gif|mp4|webm)$")
SECRET_FILE = ".media-secret"  # noqa: S105 - a file name, not a secret
CHUNK = 256 * 1024


def mime_of(media_id: str) -> str:
    return MIMES.get(media_id.rsplit(".", 1)[-1], "application/octet-stream")


def media_secret(settings: Settings, root: Path) -> bytes:
    """The signing key: configured, derived from the admin key, or made once and kept."""
    if settings.media_secret:
        return settings.media_secret.encode()
    if settings.admin_key:
        return hmac.new(settings.admin_key.encode(), b"grokgate media links v1", hashlib.sha256).digest()
    path = root / SECRET_FILE
    root.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it this very moment
            value = path.read_text().strip()
            if value:
                return bytes.fromhex(value)
            time.sleep(0.01)
        raise RuntimeError(f"{path} is empty: delete it to make a new media secret") from None
    value = secrets.token_hex(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return bytes.fromhex(value)


class LocalMediaStore:
    """`MediaStore` on a folder (`settings.media`)."""

    def __init__(
        self,
        root: str | Path,
        secret: bytes,
        *,
        ttl: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(root)
        self.ttl = ttl
        self.clock = clock
        self._secret = secret

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], float] = time.time) -> LocalMediaStore:
        root = Path(settings.media)
        return cls(root, media_secret(settings, root), ttl=settings.media_ttl, clock=clock)

    def _path(self, media_id: str) -> Path | None:
        return self.root / media_id if MEDIA_ID.match(media_id) else None

    # --- signing -------------------------------------------------------------------------------

    def sign(self, media_id: str, expires: int) -> str:
        message = f"{media_id}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def verify(self, media_id: str, expires: str, signature: str) -> bool:
        """A signature made by `sign` for this id and expiry, and not yet expired."""
        if not expires.isdigit() or len(expires) > 12 or not MEDIA_ID.match(media_id):
            return False
        expected = self.sign(media_id, int(expires))
        valid = hmac.compare_digest(expected.encode(), signature.encode("ascii", "replace"))
        return valid and int(expires) > self.clock()

    # --- MediaStore ----------------------------------------------------------------------------

    async def put(self, data: bytes, mime: str) -> str:
        media_id = f"{secrets.token_hex(16)}.{EXTENSIONS.get(mime.split(';')[0].strip(), 'bin')}"
        if not MEDIA_ID.match(media_id):
            raise ValueError(f"unsupported media type {mime!r}")
        target = self.root / media_id

        def write() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            partial.write_bytes(data)
            partial.replace(target)  # readers never see half a file

        try:
            await asyncio.to_thread(write)
        except OSError as exc:  # full, read-only, gone, not a folder: the store's fault, not the client's
            raise _unavailable(exc) from None
        return media_id

    async def link(self, media_id: str, base_url: str, ttl: int | None = None) -> str:
        expires = int(self.clock()) + (ttl or self.ttl)
        sig = self.sign(media_id, expires)
        return f"{base_url.rstrip('/')}/v1/files/{media_id}/content?exp={expires}&sig={sig}"

    async def redirect(self, media_id: str) -> str | None:
        return None

    def file(self, media_id: str) -> Path | None:
        """The file on disk, or None."""
        path = self._path(media_id)
        return path if path is not None and path.is_file() else None

    async def open(self, media_id: str) -> MediaBlob | None:
        try:
            path = self.file(media_id)
            if path is None:
                return None
            info = path.stat()
        except OSError as exc:
            raise _unavailable(exc) from None
        return MediaBlob(_chunks(path), mime_of(media_id), info.st_size, info.st_mtime)

    async def inventory(self, *, limit: int = 500) -> tuple[list[MediaItem], int, int]:
        def scan() -> tuple[list[MediaItem], int, int]:
            items = []
            if self.root.is_dir():
                for path in self.root.iterdir():
                    if MEDIA_ID.match(path.name) and path.is_file():
                        info = path.stat()
                        items.append(MediaItem(path.name, info.st_size, info.st_mtime))
            items.sort(key=lambda m: (-m.created_at, m.id))
            return items[:limit], len(items), sum(m.size for m in items)

        return await asyncio.to_thread(scan)

    async def expires_by_itself(self, retention: float) -> bool:
        """A folder has no lifecycle of its own: the scheduled sweep expires its files."""
        return False

    async def delete(self, media_id: str) -> bool:
        try:
            path = self.file(media_id)
            if path is None:
                return False
            await asyncio.to_thread(path.unlink, True)
        except OSError as exc:
            raise _unavailable(exc) from None
        return True

    async def aclose(self) -> None:
        return None


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while True:
            chunk = await asyncio.to_thread(handle.read, CHUNK)
            if not chunk:
                return
            yield chunk
    finally:
        handle.close()


def _unavailable(exc: OSError) -> StoreUnavailable:
    return StoreUnavailable(
        f"The media folder is unavailable ({type(exc).__name__}: {exc.strerror or exc}).",
        code="media_unavailable",
    )
