import json
from dataclasses import replace

import pytest

from core.accounts import (
    Account,
    AccountStatus,
    Outcome,
    OutcomeKind,
    Quota,
    account_id_for,
    mask_token,
    normalize_token,
)
from core.catalog import Tier
from core.errors import InvalidRequest
from core.selection.policy import Candidate, apply_outcome, candidate, choose, reserve, upkeep
from core.services.accounts import parse_import


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("abc123", "abc123"),
        ("  sso=abc123  ", "abc123"),
        ("SSO=abc123; sso-rw=abc123; cf_clearance=x", "abc123"),
        ("ab\u200bc-d", "abc-d"),  # zero-width characters a copy carries are dropped
        ("ab\u200bc\u2013d", None),  # a look-alike dash is not a cookie character: refused, not rewritten
        ("ab c\td\n", None),  # nor is inner whitespace
        ("not a token!", None),
        ("eyJhbGciOi.J9_-x=\n", "eyJhbGciOi.J9_-x="),  # base64url, dots and padding are
        ('a"b', None),
        ("a,b", None),
        ("a\\b", None),
        ("\ufeffeyJhbGci", "eyJhbGci"),
        ("", None),
        ("sso=", None),
        ("tökén", None),
        ("x" * (16 * 1024 + 1), None),
    ],
)
def test_token_normalisation(raw, expected):
    assert normalize_token(raw) == expected


def test_masking_never_shows_a_whole_token():
    assert mask_token("short") == "*****"
    masked = mask_token("eyJhbGciOiJIUzI1NiJ9.payload.signature")
    assert masked.startswith("eyJh") and masked.endswith("ture") and "payload" not in masked


def test_ids_are_stable_per_token():
    assert account_id_for("a") == account_id_for("a") != account_id_for("b")


def test_parse_lines_drops_duplicates_and_counts_invalid():
    parsed = parse_import("tok-1\n# a comment\nsso=tok-2\n\ntok-1\nbäd\n", Tier.SUPER)
    assert [a.token for a in parsed.accounts] == ["tok-1", "tok-2"]
    assert all(a.tier is Tier.SUPER for a in parsed.accounts)
    assert parsed.duplicates == 1
    assert parsed.invalid == 1


def test_parse_json_objects_with_tier_note_tags():
    text = json.dumps(
        [
            {"token": "t1", "tier": "heavy", "note": "team", "tags": ["a"]},
            {"sso_token": "sso=t2"},
            {"token": "t3", "tier": "platinum"},
            {"note": "no token"},
            "t4",
        ]
    )
    parsed = parse_import(text)
    assert [(a.token, a.tier, a.note, a.tags) for a in parsed.accounts] == [
        ("t1", Tier.HEAVY, "team", ("a",)),
        ("t2", Tier.BASIC, "", ()),
        ("t4", Tier.BASIC, "", ()),
    ]
    assert parsed.invalid == 2


def test_parse_json_object_with_accounts_list():
    parsed = parse_import('{"provider":"web","accounts":[{"token":"t1","tier":"auto"}]}')
    assert [a.token for a in parsed.accounts] == ["t1"]


def test_parse_broken_json_is_a_clear_error():
    with pytest.raises(InvalidRequest, match="JSON"):
        parse_import("[{")


def test_choose_prefers_low_tier_then_remaining_then_in_flight_then_least_recent():
    a = Candidate("a", Tier.SUPER, 100, 0, 0.0)
    b = Candidate("b", Tier.BASIC, 1, 5, 9.0)
    assert choose([a, b]) is b
    c = Candidate("c", Tier.BASIC, 2, 5, 9.0)
    assert choose([a, b, c]) is c
    d = Candidate("d", Tier.BASIC, 2, 1, 9.0)
    assert choose([a, b, c, d]) is d
    e = Candidate("e", Tier.BASIC, 2, 1, 1.0)
    assert choose([a, b, c, d, e]) is e
    assert choose([Candidate("z", Tier.BASIC, 0, 0, 0.0)]) is None


def _account(**kw):
    base = dict(id="acc", token="t", tier=Tier.BASIC, in_flight=1, quotas={"fast": Quota(5, 60, 100, 1000.0)})
    base.update(kw)
    return Account(**base)


def test_outcomes_move_the_account_through_its_states():
    rate = apply_outcome(_account(), "fast", Outcome(OutcomeKind.RATE_LIMITED, "429 too many", 500.0), 10.0)
    assert rate.status is AccountStatus.COOLING and rate.cooling_until == 500.0
    assert rate.quotas["fast"].remaining == 0 and rate.reason == "429 too many" and rate.in_flight == 0
    expired = apply_outcome(_account(), "fast", Outcome(OutcomeKind.EXPIRED, "invalid-credentials"), 10.0)
    assert expired.status is AccountStatus.EXPIRED and expired.last_failure_at == 10.0
    blocked = apply_outcome(_account(), "fast", Outcome(OutcomeKind.BLOCKED, "blocked-user"), 10.0)
    assert blocked.status is AccountStatus.BLOCKED
    transient = apply_outcome(_account(), "fast", Outcome(OutcomeKind.TRANSIENT, "502", refund=True), 10.0)
    assert transient.status is AccountStatus.ACTIVE and transient.quotas["fast"].remaining == 6
    healed = apply_outcome(
        _account(status=AccountStatus.COOLING, reason="x"), "fast", Outcome.success(), 10.0
    )
    assert healed.status is AccountStatus.ACTIVE and healed.reason == "" and healed.use_count == 1
    disabled = apply_outcome(_account(status=AccountStatus.DISABLED), "fast", Outcome.success(), 10.0)
    assert disabled.status is AccountStatus.DISABLED


def test_quota_window_refills_when_it_ends():
    q = Quota(0, 20, 100, 50.0)
    assert q.current(49.0) is q
    assert q.current(50.0) == Quota(20, 20, 100, 150.0)


def test_a_lease_candidate_is_an_active_account_with_quota_left_now():
    assert candidate(_account(), "fast", 10.0) == Candidate("acc", Tier.BASIC, 5, 1, 0.0)
    assert candidate(_account(), "expert", 10.0) is None  # no window for that mode
    assert candidate(_account(status=AccountStatus.COOLING), "fast", 10.0) is None
    spent = _account(quotas={"fast": Quota(0, 60, 100, 1000.0)})
    assert candidate(spent, "fast", 999.0) is None
    assert candidate(spent, "fast", 1000.0) == Candidate("acc", Tier.BASIC, 60, 1, 0.0)  # the window ended


def test_after_a_lost_race_any_live_candidate_may_be_chosen():
    import random

    best, other = Candidate("a", Tier.BASIC, 9, 0, 0.0), Candidate("b", Tier.BASIC, 1, 3, 5.0)
    empty = Candidate("c", Tier.BASIC, 0, 0, 0.0)
    rng = random.Random(7)
    assert {choose([best, other, empty], rng).account_id for _ in range(50)} == {"a"}
    picked = {choose([best, other, empty], rng, contended=True).account_id for _ in range(50)}
    assert picked == {"a", "b"}


def test_a_lease_reserves_a_unit_and_upkeep_reclaims_what_time_ended():
    taken = reserve(_account(), "fast", 20.0)
    assert taken.quotas["fast"].remaining == 4 and taken.in_flight == 2 and taken.last_used_at == 20.0
    cooling = _account(
        status=AccountStatus.COOLING,
        cooling_until=30.0,
        in_flight=2,
        quotas={"fast": Quota(0, 60, 100, 40.0)},
    )
    assert upkeep(cooling, 1, 29.0) == replace(cooling, in_flight=1)
    later = upkeep(cooling, 3, 40.0)
    assert later.status is AccountStatus.ACTIVE and later.cooling_until == 0.0 and later.in_flight == 0
    assert later.quotas["fast"] == Quota(60, 60, 100, 140.0)
