"""The `AccountStore` contract (core/ports.py), run over every store: SQLite, Redis over TCP,
Redis through the Upstash REST shim with the real `upstash-redis` client, DynamoDB on moto.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from core.accounts import (
    AccountStatus,
    AccountUpdate,
    NewAccount,
    Outcome,
    OutcomeKind,
    Quota,
    TierSource,
    account_id_for,
    default_quotas,
)
from core.catalog import Tier

NOW = 1_000_000.0
ALL_TIERS = [Tier.BASIC, Tier.SUPER, Tier.HEAVY]


async def _one(store, token="tok-a", tier=Tier.BASIC):
    await store.add([NewAccount(token, tier)], NOW)
    return account_id_for(token)


async def test_add_skips_duplicates_and_get_returns_the_record(account_store):
    report = await account_store.add(
        [
            NewAccount("tok-a", Tier.BASIC, note="first", tags=("x", "y")),
            NewAccount("tok-b", Tier.SUPER),
            NewAccount("tok-a", Tier.HEAVY),
        ],
        NOW,
    )
    assert (report.added, report.skipped, report.invalid) == (2, 1, 0)
    again = await account_store.add([NewAccount("tok-b", Tier.BASIC), NewAccount("tok-c")], NOW)
    assert (again.added, again.skipped) == (1, 1)
    account = await account_store.get(account_id_for("tok-a"))
    assert account.token == "tok-a" and account.tier is Tier.BASIC and account.status is AccountStatus.ACTIVE
    assert account.note == "first" and account.tags == ("x", "y")
    assert account.quotas == default_quotas(Tier.BASIC, NOW)
    assert account.created_at == NOW and account.in_flight == 0 and account.use_count == 0
    assert (await account_store.get(account_id_for("tok-b"))).tier is Tier.SUPER
    assert await account_store.get("acc_missing") is None
    await account_store.ping()


async def test_lowest_sufficient_tier_first_and_statuses_excluded(account_store):
    await account_store.add(
        [NewAccount("s", Tier.SUPER), NewAccount("b", Tier.BASIC), NewAccount("h", Tier.HEAVY)], NOW
    )
    lease = await account_store.lease(mode="fast", tiers=ALL_TIERS, now=NOW, ttl=60)
    assert lease.tier is Tier.BASIC and lease.token == "b" and lease.mode == "fast"
    assert lease.expires_at == NOW + 60
    assert await account_store.release(lease, Outcome(OutcomeKind.EXPIRED, "invalid-credentials"), NOW)
    expired = await account_store.get(lease.account_id)
    assert expired.status is AccountStatus.EXPIRED and expired.reason == "invalid-credentials"
    assert expired.fail_count == 1 and expired.last_failure_at == NOW
    lease = await account_store.lease(mode="fast", tiers=ALL_TIERS, now=NOW, ttl=60)
    assert lease.tier is Tier.SUPER
    await account_store.release(lease, Outcome(OutcomeKind.RATE_LIMITED, "429", cooling_until=NOW + 100), NOW)
    cooling = await account_store.get(lease.account_id)
    assert cooling.status is AccountStatus.COOLING and cooling.cooling_until == NOW + 100
    assert cooling.quotas["fast"].remaining == 0 and cooling.quotas["fast"].reset_at >= NOW + 100
    lease = await account_store.lease(mode="fast", tiers=ALL_TIERS, now=NOW, ttl=60)
    assert lease.tier is Tier.HEAVY
    heavy_id = lease.account_id
    await account_store.release(lease, Outcome.success(), NOW)
    assert await account_store.set_status(heavy_id, AccountStatus.DISABLED, "operator", NOW)
    assert await account_store.lease(mode="fast", tiers=[Tier.SUPER, Tier.HEAVY], now=NOW + 1, ttl=60) is None
    # Cooling ends by itself; another mode of the account is usable again.
    lease = await account_store.lease(mode="auto", tiers=[Tier.SUPER], now=NOW + 101, ttl=60)
    assert lease is not None and lease.tier is Tier.SUPER
    assert (await account_store.get(lease.account_id)).status is AccountStatus.ACTIVE


async def test_lease_reserves_one_unit_and_release_applies_once(account_store):
    account_id = await _one(account_store)
    lease = await account_store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=30)
    assert lease.account_id == account_id and lease.token == "tok-a"
    reserved = await account_store.get(account_id)
    assert (
        reserved.in_flight == 1 and reserved.quotas["fast"].remaining == 59 and reserved.last_used_at == NOW
    )
    assert await account_store.release(lease, Outcome.success(), NOW + 1)
    assert not await account_store.release(lease, Outcome.success(), NOW + 2)
    assert not await account_store.release(lease, Outcome(OutcomeKind.BLOCKED), NOW + 2)
    account = await account_store.get(account_id)
    assert account.in_flight == 0 and account.use_count == 1 and account.status is AccountStatus.ACTIVE
    assert account.quotas["fast"].remaining == 59


async def test_an_unreleased_lease_expires_and_its_unit_stays_spent(account_store):
    account_id = await _one(account_store)
    crashed = await account_store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=30)
    assert (await account_store.get(account_id)).in_flight == 1
    later = await account_store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW + 31, ttl=30)
    account = await account_store.get(later.account_id)
    assert account.in_flight == 1  # the crashed holder's count came back; the new lease holds one
    assert account.quotas["fast"].remaining == 58
    assert not await account_store.release(crashed, Outcome.success(), NOW + 32)
    assert await account_store.release(later, Outcome.success(), NOW + 32)
    assert (await account_store.get(account_id)).in_flight == 0


async def test_windows_refill_when_they_end(account_store):
    account_id = await _one(account_store)
    assert await account_store.set_quota(account_id, "expert", Quota(0, 8, 100, NOW + 100))
    assert await account_store.lease(mode="expert", tiers=[Tier.BASIC], now=NOW + 50, ttl=60) is None
    lease = await account_store.lease(mode="expert", tiers=[Tier.BASIC], now=NOW + 100, ttl=60)
    assert lease is not None
    assert (await account_store.get(account_id)).quotas["expert"] == Quota(7, 8, 100, NOW + 200)


async def test_no_candidate_is_none(account_store):
    assert await account_store.lease(mode="fast", tiers=ALL_TIERS, now=NOW, ttl=60) is None
    await _one(account_store, tier=Tier.BASIC)
    assert (
        await account_store.lease(mode="heavy", tiers=ALL_TIERS, now=NOW, ttl=60) is None
    )  # basic has no heavy
    assert await account_store.lease(mode="fast", tiers=[Tier.SUPER], now=NOW, ttl=60) is None
    assert await account_store.lease(mode="fast", tiers=[], now=NOW, ttl=60) is None


async def test_more_remaining_quota_first_then_fewer_in_flight(account_store):
    await account_store.add([NewAccount("low"), NewAccount("high")], NOW)
    await account_store.set_quota(account_id_for("low"), "fast", Quota(3, 60, 3600, NOW + 3600))
    await account_store.set_quota(account_id_for("high"), "fast", Quota(5, 60, 3600, NOW + 3600))
    first = await account_store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=60)
    second = await account_store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW + 1, ttl=60)
    assert first.token == "high" and second.token == "high"  # 5 then 4 left, still more than 3
    # Now 3 each: the one with fewer in flight wins.
    third = await account_store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW + 2, ttl=60)
    assert third.token == "low"


async def test_least_recently_used_then_random_among_equals(account_store):
    await account_store.add([NewAccount("a"), NewAccount("b")], NOW)
    for token in ("a", "b"):
        await account_store.set_quota(account_id_for(token), "fast", Quota(50, 60, 3600, NOW + 3600))
    first = await account_store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=60)
    await account_store.release(first, Outcome(OutcomeKind.TRANSIENT, refund=True), NOW)
    second = await account_store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW + 120, ttl=60)
    assert second.account_id != first.account_id  # equal quota and in-flight: the one never used
    await account_store.release(second, Outcome(OutcomeKind.TRANSIENT, refund=True), NOW + 120)
    # Equal in every way (quota, in flight, same last use): both get chosen over many tries.
    await account_store.add([NewAccount("c"), NewAccount("d")], NOW)
    seen = Counter()
    for i in range(24):
        lease = await account_store.lease(mode="expert", tiers=[Tier.BASIC], now=NOW + 200, ttl=60)
        seen[lease.token] += 1
        await account_store.release(lease, Outcome(OutcomeKind.CANCELLED, refund=True), NOW + 200)
        for token in ("a", "b", "c", "d"):  # keep them tied
            await account_store.set_quota(account_id_for(token), "expert", Quota(8, 8, 3600, NOW + 3600))
        del i
    assert len(seen) >= 2


async def test_outcomes_move_the_account(account_store):
    account_id = await _one(account_store)

    async def leased():
        return await account_store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=60)

    lease = await leased()
    reported = Quota(42, 60, 7200, NOW + 7200)
    await account_store.release(lease, Outcome.success(reported), NOW + 1)
    account = await account_store.get(account_id)
    assert account.quotas["fast"] == reported and account.use_count == 1 and account.reason == ""

    lease = await leased()
    await account_store.release(lease, Outcome(OutcomeKind.TRANSIENT, "upstream 502", refund=True), NOW + 2)
    account = await account_store.get(account_id)
    assert account.quotas["fast"].remaining == 42 and account.status is AccountStatus.ACTIVE
    assert account.reason == "upstream 502" and account.fail_count == 1 and account.last_failure_at == NOW + 2

    lease = await leased()
    await account_store.release(lease, Outcome(OutcomeKind.CHALLENGE), NOW + 3)
    account = await account_store.get(account_id)
    assert (
        account.status is AccountStatus.ACTIVE and account.reason == "challenge" and account.fail_count == 2
    )
    assert account.quotas["fast"].remaining == 41

    lease = await leased()
    await account_store.release(lease, Outcome(OutcomeKind.CANCELLED), NOW + 4)
    account = await account_store.get(account_id)
    assert account.fail_count == 2 and account.reason == "challenge" and account.in_flight == 0

    lease = await leased()
    await account_store.release(lease, Outcome.success(), NOW + 5)
    assert (await account_store.get(account_id)).reason == ""

    lease = await leased()
    await account_store.release(lease, Outcome(OutcomeKind.BLOCKED, "blocked-user"), NOW + 6)
    account = await account_store.get(account_id)
    assert account.status is AccountStatus.BLOCKED and account.reason == "blocked-user"
    assert await account_store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW + 7, ttl=60) is None


async def test_operator_actions(account_store):
    account_id = await _one(account_store)
    assert await account_store.set_status(account_id, AccountStatus.DISABLED, "by hand", NOW)
    account = await account_store.get(account_id)
    assert account.status is AccountStatus.DISABLED and account.reason == "by hand"
    assert await account_store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=60) is None
    assert await account_store.set_status(account_id, AccountStatus.ACTIVE, "", NOW)
    lease = await account_store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=60)
    assert lease is not None
    # A disabled account stays disabled whatever its in-flight requests report.
    await account_store.set_status(account_id, AccountStatus.DISABLED, "by hand", NOW)
    await account_store.release(lease, Outcome(OutcomeKind.RATE_LIMITED, "429", cooling_until=NOW + 50), NOW)
    assert (await account_store.get(account_id)).status is AccountStatus.DISABLED
    # Reset cooling: ACTIVE clears the cooling time and the reason.
    await account_store.set_status(account_id, AccountStatus.ACTIVE, "", NOW)
    lease = await account_store.lease(mode="auto", tiers=[Tier.BASIC], now=NOW, ttl=60)
    await account_store.release(lease, Outcome(OutcomeKind.RATE_LIMITED, "429", cooling_until=NOW + 500), NOW)
    assert await account_store.set_status(account_id, AccountStatus.ACTIVE, "", NOW + 1)
    account = await account_store.get(account_id)
    assert account.status is AccountStatus.ACTIVE and account.cooling_until == 0 and account.reason == ""
    # The rate-limited windows stay empty until they end (or a refresh reports them).
    assert await account_store.lease(mode="auto", tiers=[Tier.BASIC], now=NOW + 1, ttl=60) is None
    assert await account_store.lease(mode="expert", tiers=[Tier.BASIC], now=NOW + 1, ttl=60) is not None

    assert not await account_store.set_status("acc_missing", AccountStatus.DISABLED, "", NOW)
    assert not await account_store.set_quota("acc_missing", "fast", Quota(1, 1, 1, NOW))
    assert not await account_store.remove("acc_missing")


async def test_set_quota_adds_a_mode_and_leases_follow_it(account_store):
    account_id = await _one(account_store)
    assert await account_store.lease(mode="heavy", tiers=[Tier.BASIC], now=NOW, ttl=60) is None
    assert await account_store.set_quota(account_id, "heavy", Quota(2, 20, 7200, NOW + 7200))
    assert (await account_store.get(account_id)).quotas["heavy"] == Quota(2, 20, 7200, NOW + 7200)
    assert await account_store.lease(mode="heavy", tiers=[Tier.BASIC], now=NOW, ttl=60)
    assert await account_store.lease(mode="heavy", tiers=[Tier.BASIC], now=NOW, ttl=60)
    assert await account_store.lease(mode="heavy", tiers=[Tier.BASIC], now=NOW, ttl=60) is None


async def test_update_moves_the_tier_pool_and_keeps_note_tags_and_source(account_store):
    await account_store.add([NewAccount("up-a", Tier.BASIC, note="n", tags=("t",))], NOW)
    account_id = account_id_for("up-a")
    assert (await account_store.get(account_id)).tier_source is TierSource.ASSUMED
    # A super-only request finds nothing while the account is basic...
    assert await account_store.lease(mode="fast", tiers=[Tier.SUPER], now=NOW, ttl=60) is None
    assert await account_store.update(
        account_id, AccountUpdate(tier=Tier.SUPER, tier_source=TierSource.DETECTED)
    )
    changed = await account_store.get(account_id)
    assert changed.tier is Tier.SUPER and changed.tier_source is TierSource.DETECTED
    assert changed.note == "n" and changed.tags == ("t",)  # untouched fields stay
    # ...and is served by it once it is super; a basic-only request no longer is.
    assert await account_store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=60) is None
    lease = await account_store.lease(mode="fast", tiers=[Tier.SUPER], now=NOW, ttl=60)
    assert lease is not None and lease.tier is Tier.SUPER and lease.account_id == account_id
    assert await account_store.release(lease, Outcome.success(), NOW)
    assert [a.id for a in (await account_store.list(tier=Tier.SUPER)).items] == [account_id]
    assert (await account_store.list(tier=Tier.BASIC)).items == []

    assert await account_store.update(account_id, AccountUpdate(note="", tags=("a", "b")))
    edited = await account_store.get(account_id)
    assert edited.note == "" and edited.tags == ("a", "b") and edited.tier is Tier.SUPER
    assert not await account_store.update("acc_missing", AccountUpdate(note="x"))


async def test_remove_then_release_is_a_no_op(account_store):
    account_id = await _one(account_store)
    lease = await account_store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=60)
    assert await account_store.remove(account_id)
    assert await account_store.get(account_id) is None
    assert not await account_store.release(lease, Outcome.success(), NOW)
    assert await account_store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=60) is None
    assert (await account_store.list()).items == []


async def test_listing_pages_and_filters(account_store):
    await account_store.add(
        [NewAccount(f"tok{i}", Tier.SUPER if i % 2 else Tier.BASIC) for i in range(7)], NOW
    )
    page = await account_store.list(limit=3)
    assert len(page.items) == 3 and page.next_cursor
    rest = await account_store.list(cursor=page.next_cursor, limit=10)
    assert len(rest.items) == 4 and rest.next_cursor is None
    ids = [a.id for a in page.items + rest.items]
    assert ids == sorted(ids) and len(set(ids)) == 7
    supers = await account_store.list(tier=Tier.SUPER)
    assert len(supers.items) == 3 and all(a.tier is Tier.SUPER for a in supers.items)
    await account_store.set_status(supers.items[0].id, AccountStatus.DISABLED, "", NOW)
    basic = (await account_store.list(tier=Tier.BASIC, limit=1)).items[0]
    await account_store.set_status(basic.id, AccountStatus.DISABLED, "", NOW)
    disabled = await account_store.list(status=AccountStatus.DISABLED)
    assert {a.id for a in disabled.items} == {supers.items[0].id, basic.id}
    both = await account_store.list(status=AccountStatus.DISABLED, tier=Tier.SUPER)
    assert [a.id for a in both.items] == [supers.items[0].id]
    one = await account_store.list(status=AccountStatus.ACTIVE, limit=1)
    collected = list(one.items)
    while one.next_cursor:
        one = await account_store.list(status=AccountStatus.ACTIVE, cursor=one.next_cursor, limit=1)
        collected += one.items
    assert len(collected) == 5
    assert all("…" in a.public()["token"] or set(a.public()["token"]) == {"*"} for a in collected)


async def test_concurrent_leases_never_overspend(account_store):
    account_id = await _one(account_store)
    await account_store.set_quota(account_id, "fast", Quota(5, 60, 3600, NOW + 3600))
    leases = await asyncio.gather(
        *(account_store.lease(mode="fast", tiers=[Tier.BASIC], now=NOW, ttl=60) for _ in range(20))
    )
    granted = [lease for lease in leases if lease is not None]
    assert len(granted) == 5 and len({lease.id for lease in granted}) == 5
    account = await account_store.get(account_id)
    assert account.in_flight == 5 and account.quotas["fast"].remaining == 0
    results = await asyncio.gather(
        *(account_store.release(lease, Outcome.success(), NOW) for lease in granted * 2)
    )
    assert sum(results) == 5
    assert (await account_store.get(account_id)).in_flight == 0


async def test_refresh_claims_are_won_once_per_interval(account_store):
    await account_store.add([NewAccount("a"), NewAccount("b", Tier.SUPER)], NOW)
    due = await account_store.due_for_refresh(now=NOW, limit=10)
    assert {a.token for a in due} == {"a", "b"}  # new accounts are due at once
    a_id = account_id_for("a")
    claims = await asyncio.gather(
        *(account_store.claim_refresh(a_id, now=NOW, next_at=NOW + 36000, min_interval=300) for _ in range(4))
    )
    assert sum(claims) == 1
    assert [a.token for a in await account_store.due_for_refresh(now=NOW, limit=10)] == ["b"]
    assert not await account_store.claim_refresh(a_id, now=NOW + 299, next_at=NOW + 999, min_interval=300)
    assert await account_store.claim_refresh(a_id, now=NOW + 300, next_at=NOW + 36000, min_interval=300)
    assert {a.token for a in await account_store.due_for_refresh(now=NOW + 36000, limit=10)} == {"a", "b"}
    assert len(await account_store.due_for_refresh(now=NOW + 36000, limit=1)) == 1
    assert not await account_store.claim_refresh("acc_missing", now=NOW, next_at=NOW, min_interval=0)


async def test_listing_by_tag_and_text(account_store):
    await account_store.add(
        [
            NewAccount("tok-t1", Tier.BASIC, note="Team Blue", tags=("eu", "trial")),
            NewAccount("tok-t2", Tier.SUPER, note="team red", tags=("us",)),
            NewAccount("tok-t3", Tier.BASIC, note="spare", tags=("eu-west",)),
            NewAccount("tok-t4", Tier.BASIC, note="", tags=()),
        ],
        NOW,
    )
    eu = await account_store.list(tag="eu")
    assert [a.note for a in eu.items] == ["Team Blue"]  # a tag matches whole, not by prefix
    team = await account_store.list(text="TEAM")
    assert sorted(a.note for a in team.items) == ["Team Blue", "team red"]
    by_tag_text = await account_store.list(text="west")
    assert [a.note for a in by_tag_text.items] == ["spare"]
    by_id = await account_store.list(text=account_id_for("tok-t4")[4:12])
    assert [a.token for a in by_id.items] == ["tok-t4"]
    combined = await account_store.list(tier=Tier.BASIC, text="team")
    assert [a.note for a in combined.items] == ["Team Blue"]
    one = await account_store.list(text="team", limit=1)
    rest = await account_store.list(text="team", cursor=one.next_cursor, limit=1)
    assert len(one.items) == len(rest.items) == 1 and rest.next_cursor is None
    assert (await account_store.list(tag="nowhere")).items == []
