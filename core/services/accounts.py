"""Account operations shared by the CLI and the admin API: parsing imports, importing."""

from __future__ import annotations

import json
from dataclasses import dataclass

from core.accounts import ImportReport, NewAccount, normalize_token
from core.catalog import Tier
from core.errors import InvalidRequest
from core.ports import AccountStore


@dataclass(frozen=True, slots=True)
class ParsedImport:
    accounts: list[NewAccount]
    invalid: int
    duplicates: int


def parse_import(text: str, default_tier: Tier = Tier.BASIC) -> ParsedImport:
    """Parse an import: one token per line, or JSON.

    JSON may be a list of tokens or of objects `{token|sso_token, tier?, note?, tags?}`, or an
    object with such a list under `accounts`. Tokens are normalised (protocol §2.1); unusable
    ones are counted invalid; repeats within the input are dropped.
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


def _entry(entry: object, default_tier: Tier) -> NewAccount | None:
    if isinstance(entry, str):
        token = normalize_token(entry)
        return NewAccount(token, default_tier) if token else None
    if not isinstance(entry, dict):
        return None
    raw = entry.get("token") or entry.get("sso_token")
    token = normalize_token(raw) if isinstance(raw, str) else None
    if token is None:
        return None
    tier_value = entry.get("tier") or default_tier.value
    try:
        tier = default_tier if tier_value == "auto" else Tier(tier_value)
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
    return NewAccount(token, tier, note, tuple(tags))


async def import_accounts(
    store: AccountStore, text: str, now: float, default_tier: Tier = Tier.BASIC
) -> ImportReport:
    """Parse and add; skipped counts repeats in the input and tokens already in the store."""
    parsed = parse_import(text, default_tier)
    report = await store.add(parsed.accounts, now)
    return ImportReport(
        added=report.added,
        skipped=report.skipped + parsed.duplicates,
        invalid=parsed.invalid + report.invalid,
    )
