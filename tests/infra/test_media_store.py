"""Media stores: the local folder's signed links (tampered and expired links refused, secrets never
a constant) and S3 on moto's server (a presigned URL downloads the bytes)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from botocore.config import Config

from core.settings import Settings
from infra.media.local import SECRET_FILE, LocalMediaStore, media_secret
from infra.media.s3 import S3MediaStore, parse_s3_url
from tests.fixtures.stores import MotoServer

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _read(store, media_id: str) -> bytes:
    blob = await store.open(media_id)
    assert blob is not None
    return b"".join([chunk async for chunk in blob.chunks])


def _parts(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return parts.path.split("/")[3], query["exp"][0], query["sig"][0]


async def test_local_put_link_verify_open(tmp_path):
    clock = Clock()
    store = LocalMediaStore(tmp_path, b"k" * 32, ttl=60, clock=clock)
    media_id = await store.put(JPEG, "image/jpeg")
    assert media_id.endswith(".jpg")
    url = await store.link(media_id, "https://gw.example/")
    assert url.startswith(f"https://gw.example/v1/files/{media_id}/content?exp=")
    mid, exp, sig = _parts(url)
    assert mid == media_id and int(exp) == int(clock.now) + 60
    assert store.verify(media_id, exp, sig)
    assert await _read(store, media_id) == JPEG
    blob = await store.open(media_id)
    assert blob is not None and blob.mime == "image/jpeg" and blob.size == len(JPEG)
    assert await store.redirect(media_id) is None
    assert not list(tmp_path.glob("*.part"))


async def test_local_tampered_and_expired_links_are_refused(tmp_path):
    clock = Clock()
    store = LocalMediaStore(tmp_path, b"k" * 32, ttl=60, clock=clock)
    media_id = await store.put(MP4, "video/mp4")
    _, exp, sig = _parts(await store.link(media_id, "http://x"))
    other = await store.put(JPEG, "image/jpeg")
    assert not store.verify(other, exp, sig)  # a signature is bound to its id
    assert not store.verify(media_id, str(int(exp) + 1), sig)  # and to its expiry
    assert not store.verify(media_id, exp, sig[:-1] + ("0" if sig[-1] != "0" else "1"))
    assert not store.verify(media_id, exp, "")
    assert not store.verify(media_id, "-1", sig)
    assert not store.verify("../" + media_id, exp, sig)
    other_key = LocalMediaStore(tmp_path, b"j" * 32, ttl=60, clock=clock)
    assert not other_key.verify(media_id, exp, sig)
    clock.now += 59
    assert store.verify(media_id, exp, sig)
    clock.now += 1
    assert not store.verify(media_id, exp, sig)  # expired


async def test_local_open_refuses_ids_that_could_leave_the_folder(tmp_path):
    (tmp_path / "secret.txt").write_text("no")
    store = LocalMediaStore(tmp_path / "media", b"k" * 32)
    for bad in ("../secret.txt", "..", SECRET_FILE, "x" * 32 + ".jpg", "0" * 32 + ".jpg"):
        assert await store.open(bad) is None


def test_secret_is_configured_derived_or_random_and_kept(tmp_path):
    configured = Settings(media_secret="configured-secret")
    assert media_secret(configured, tmp_path / "a") == b"configured-secret"
    derived = media_secret(Settings(admin_key="admin-key-1"), tmp_path / "b")
    assert derived != b"admin-key-1" and len(derived) == 32
    assert media_secret(Settings(admin_key="admin-key-2"), tmp_path / "b") != derived
    random_1 = media_secret(Settings(), tmp_path / "c")
    random_2 = media_secret(Settings(), tmp_path / "c")  # the same install: the kept secret
    assert random_1 == random_2 and len(random_1) == 32
    assert media_secret(Settings(), tmp_path / "d") != random_1  # another install: another secret
    mode = stat.S_IMODE(os.stat(tmp_path / "c" / SECRET_FILE).st_mode)
    assert mode == 0o600


def test_s3_urls_are_parsed():
    assert parse_s3_url("s3://my-bucket") == ("my-bucket", "")
    assert parse_s3_url("s3://my-bucket/media/gen/") == ("my-bucket", "media/gen/")
    with pytest.raises(ValueError):
        parse_s3_url("https://my-bucket")


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def s3(moto: MotoServer) -> S3MediaStore:
    client = boto3.client(
        "s3",
        endpoint_url=moto.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version="s3v4"),  # as S3MediaStore builds its own client
    )
    client.create_bucket(Bucket="grokgate-media")
    return S3MediaStore("grokgate-media", "gen/", ttl=120, client=client)


async def test_s3_presigned_url_downloads_the_bytes(s3):
    media_id = await s3.put(MP4, "video/mp4")
    url = await s3.link(media_id, "https://ignored.example")
    assert "X-Amz-Signature=" in url and "/gen/" in url
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == MP4
    assert response.headers["content-type"] == "video/mp4"
    assert await s3.redirect(media_id) is not None
    assert await _read(s3, media_id) == MP4


async def test_s3_missing_object_is_none(s3):
    assert await s3.open("0" * 32 + ".jpg") is None
    assert await s3.open("../etc") is None


@pytest.fixture(params=["local", "s3"])
async def inventoried(request, tmp_path):
    if request.param == "local":
        return LocalMediaStore(tmp_path / "media", b"k" * 32, clock=Clock())
    shared = request.getfixturevalue("s3")  # the module's bucket: a prefix of this test's own
    return S3MediaStore(shared.bucket, f"inv-{request.node.name[-4:-1]}-{os.getpid()}/", client=shared.client)


async def test_inventory_counts_sizes_and_deletes(inventoried):
    store = inventoried
    assert await store.inventory() == ([], 0, 0)
    first = await store.put(b"a" * 10, "image/png")
    second = await store.put(MP4, "video/mp4")
    items, count, total = await store.inventory()
    assert count == 2 and total == 10 + len(MP4)
    assert {i.id: i.size for i in items} == {first: 10, second: len(MP4)}
    assert all(i.created_at > 0 for i in items)
    assert len((await store.inventory(limit=1))[0]) == 1 and (await store.inventory(limit=1))[1] == 2
    assert await store.delete(first)
    assert not await store.delete(first) and not await store.delete("../etc")
    assert await store.open(first) is None
    assert (await store.inventory())[1:] == (1, len(MP4))
