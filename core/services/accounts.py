"""Account operations shared by the CLI and the admin API: parsing imports, importing, editing.

A tier given on import (per entry, or as the import's default) is the operator's and is kept;
an account imported without one is recorded as basic, *assumed*, and its tier is then read from
the upstream's rate limits at once (and again on every quota refresh).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass

from core.accounts import AccountUpdate, ImportReport, NewAccount, TierSource, account_id_for, normalize_token
from core.catalog import Tier
from core.errors import InvalidRequest, NotFound
from core.ports import AccountStore
from core.services.quota import FetchRateLimits, refresh_account

DETECT_CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class ParsedImport:
    accounts: list[NewAccount]
    invalid: int
    duplicates: int


def parse_import(text: str, default_tier: Tier | None = None) -> ParsedImport:
    """Parse an import: one token per line, or JSON.

    JSON may be a list of tokens or of objects `{token|sso_token, tier?, note?, tags?}`, or an
    object with such a list under `accounts`. Tokens are normalised (docs/protocol.md#token); unusable
    ones are counted invalid; repeats within the input are dropped. A tier (the entry's, else
    `default_tier`) is the operator's; none, or `"auto"`, leaves the tier to detection.
    """
    stripped = text.strip()
    entries: list[object]
    if stripped.startswith(("[", "{")):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"The import looks like JSON but does not parse: {exc}.") from None
        if isinstance(data, dict):
            data = data.get("accounts")
        if not isinstance(data, list):
            raise InvalidRequest("A JSON import must be a list, or an object with an `accounts` list.")
        entries = data
    else:
        entries = [
            line for line in stripped.splitlines() if line.strip() and not line.lstrip().startswith("#")
        ]

    accounts: list[NewAccount] = []
    seen: set[str] = set()
    invalid = duplicates = 0
    for entry in entries:
        parsed = _entry(entry, default_tier)
        if parsed is None:
            invalid += 1
        elif parsed.token in seen:
            duplicates += 1
        else:
            seen.add(parsed.token)
            accounts.append(parsed)
    return ParsedImport(accounts, invalid, duplicates)


def _new(token: str, tier: Tier | None, note: str = "", tags: tuple[str, ...] = ()) -> NewAccount:
    if tier is None:
        return NewAccount(token, Tier.BASIC, note, tags, TierSource.ASSUMED)
    return NewAccount(token, tier, note, tags, TierSource.OPERATOR)


def _entry(entry: object, default_tier: Tier | None) -> NewAccount | None:
    if isinstance(entry, str):
        token = normalize_token(entry)
        return _new(token, default_tier) if token else None
    if not isinstance(entry, dict):
        return None
    raw = entry.get("token") or entry.get("sso_token")
    token = normalize_token(raw) if isinstance(raw, str) else None
    if token is None:
        return None
    tier_value = entry.get("tier")
    try:
        tier = default_tier if tier_value in (None, "", "auto") else Tier(tier_value)
    except ValueError:
        return None
    note = entry.get("note") or ""
    tags = entry.get("tags") or ()
    if (
        not isinstance(note, str)
        or not isinstance(tags, list | tuple)
        or not all(isinstance(t, str) for t in tags)
    ):
        return None
    return _new(token, tier, note, tuple(tags))


async def import_accounts(
    store: AccountStore,
    text: str,
    now: float,
    default_tier: Tier | None = None,
    fetch: FetchRateLimits | None = None,
) -> ImportReport:
    """Parse and add; skipped counts repeats in the input and tokens already in the store.

    With `fetch` (the upstream's rate limits), every added account without an operator's tier is
    refreshed at once, which detects its tier and reads its real windows; one the upstream does not
    answer for stays basic and counts as unchecked (the quota schedule tries it again).
    """
    parsed = parse_import(text, default_tier)
    report = await store.add(parsed.accounts, now)
    unchecked = 0
    if fetch is not None and report.added:
        gate = asyncio.Semaphore(DETECT_CONCURRENCY)

        async def detect(new: NewAccount) -> bool:
            account = await store.get(account_id_for(new.token))
            # An account created at another time was already there (skipped), not added now.
            if account is None or account.created_at != now or account.tier_source is not TierSource.ASSUMED:
                return True
            async with gate:
                result = await refresh_account(store, fetch, account, now)  # type: ignore[arg-type]
            return result == "refreshed"

        unchecked = sum(not ok for ok in await asyncio.gather(*(detect(new) for new in parsed.accounts)))
    tiers: Counter[str] = Counter()
    for new in parsed.accounts:
        account = await store.get(account_id_for(new.token))
        if account is not None and account.created_at == now:
            tiers[account.tier.value] += 1
    return ImportReport(
        added=report.added,
        skipped=report.skipped + parsed.duplicates,
        invalid=parsed.invalid + report.invalid,
        tiers=dict(sorted(tiers.items())),
        unchecked=unchecked,
    )


async def update_account(store: AccountStore, account_id: str, change: AccountUpdate) -> None:
    """An operator's edit; a tier set this way is the operator's, kept by later refreshes."""
    if change.tier is not None and change.tier_source is None:
        change = AccountUpdate(change.tier, TierSource.OPERATOR, change.note, change.tags)
    if not await store.update(account_id, change):
        raise NotFound(f"No account `{account_id}`.", param="id", code="account_not_found")
