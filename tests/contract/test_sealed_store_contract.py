"""Tokens sealed at rest, over every store (issue 18, deliverable 5): SQLite, Redis over TCP, Redis
through the Upstash REST shim, DynamoDB on moto.

What the store itself holds (read through the wrapped store) is ciphertext; what the services
see through `SealedAccountStore` is the plain token; ids and duplicates follow the plain token;
`rotate` re-seals under a new key and seals tokens stored before encryption was turned on.
"""

from __future__ import annotations

import base64
import os

import pytest

from core.accounts import AccountUpdate, NewAccount, Outcome, OutcomeKind, account_id_for
from core.catalog import Tier
from core.errors import InternalError
from infra.secrets import Sealer, is_sealed
from infra.state.sealed import SealedAccountStore

NOW = 1_000_000.0
TOKEN = "plain-token-0123456789abcdefghij"


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


async def test_the_store_holds_ciphertext_and_the_port_gives_plain_tokens(account_store):
    sealed = SealedAccountStore(account_store, Sealer(new_key()))
    report = await sealed.add([NewAccount(TOKEN, Tier.BASIC), NewAccount(TOKEN, Tier.SUPER)], NOW)
    assert (report.added, report.skipped) == (1, 1)  # the duplicate is still found
    account_id = account_id_for(TOKEN)
    raw = await account_store.get(account_id)
    assert raw is not None and is_sealed(raw.token) and TOKEN not in raw.token
    assert (await sealed.get(account_id)).token == TOKEN  # type: ignore[union-attr]
    page = await sealed.list()
    assert [a.token for a in page.items] == [TOKEN]
    assert [a.token for a in (await account_store.list()).items] == [raw.token]
    lease = await sealed.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=60)
    assert lease is not None and lease.token == TOKEN
    assert await sealed.release(lease, Outcome(OutcomeKind.SUCCESS), NOW)  # the rest: the inner store's
    assert (await sealed.add([NewAccount(TOKEN)], NOW)).skipped == 1


async def test_rotation_reseals_under_the_new_key_and_seals_plain_tokens(account_store):
    old, new = new_key(), new_key()
    await account_store.add([NewAccount("stored-before-encryption-xxxxxxxx")], NOW)  # plain at rest
    await SealedAccountStore(account_store, Sealer(old)).add([NewAccount(TOKEN)], NOW)
    both = SealedAccountStore(account_store, Sealer(f"{new},{old}"))
    assert {a.token for a in (await both.list()).items} == {TOKEN, "stored-before-encryption-xxxxxxxx"}
    assert await both.rotate() == (2, 2)
    assert await both.rotate() == (0, 2)  # nothing left to do
    only_new = SealedAccountStore(account_store, Sealer(new))  # the old key can go now
    assert {a.token for a in (await only_new.list()).items} == {TOKEN, "stored-before-encryption-xxxxxxxx"}
    for raw in (await account_store.list()).items:
        assert raw.token.startswith(f"gg1.{Sealer(new).current_key_id}.")
    with pytest.raises(InternalError, match="lacks"):
        await SealedAccountStore(account_store, Sealer(old)).get(account_id_for(TOKEN))


async def test_an_update_of_other_fields_keeps_the_sealed_token(account_store):
    sealed = SealedAccountStore(account_store, Sealer(new_key()))
    await sealed.add([NewAccount(TOKEN)], NOW)
    assert await sealed.update(account_id_for(TOKEN), AccountUpdate(note="hello"))
    got = await sealed.get(account_id_for(TOKEN))
    assert got is not None and got.token == TOKEN and got.note == "hello"
    raw = await account_store.get(account_id_for(TOKEN))
    assert raw is not None and is_sealed(raw.token)


def test_a_tampered_value_does_not_open() -> None:
    sealer = Sealer(new_key())
    value = sealer.seal(TOKEN)
    assert sealer.open(value) == TOKEN
    flipped = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    with pytest.raises(InternalError, match="does not open"):
        sealer.open(flipped)
    with pytest.raises(InternalError, match="does not open"):
        sealer.open(sealer.seal(TOKEN, "clearance"))  # sealed for another purpose


async def test_clearance_cookies_are_sealed_in_the_records_beside_the_store(account_store):
    from infra.state.factory import records_for

    sealed = SealedAccountStore(account_store, Sealer(new_key()))
    records = records_for(sealed)
    plain = records_for(account_store)
    cookie = {"cookies": "cf_clearance=secret-cookie-value", "user_agent": "UA", "expires_at": NOW + 600}
    assert await records.write("clearance:egress-1", cookie, version=0, now=NOW, ttl=600)
    raw, _ = await plain.read("clearance:egress-1", now=NOW)
    assert raw is not None and is_sealed(raw["cookies"]) and "secret-cookie-value" not in str(raw)
    assert raw["user_agent"] == "UA"
    got, version = await records.read("clearance:egress-1", now=NOW)
    assert got == cookie and version == 1
    assert await records.write("batch:1", {"cookies": "not a secret here"}, version=0, now=NOW)
    assert (await plain.read("batch:1", now=NOW))[0] == {"cookies": "not a secret here"}
    await records.aclose()
    await plain.aclose()
