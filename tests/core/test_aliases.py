"""GROKGATE_MODEL_ALIASES: parsing, and which entry serves a name (most specific wins)."""

from __future__ import annotations

import pytest

from core.aliases import ModelAliases
from core.settings import Settings, SettingsError

TABLE = (
    "claude-*=grok-4.20-0309-reasoning, claude-haiku-*=grok-4.20-0309-non-reasoning,"
    "gpt-5*=grok-4.20-0309,gpt-5.1-codex-mini=grok-4.20-0309-non-reasoning,grok-*=grok-4.20-0309-heavy"
)


@pytest.mark.parametrize(
    ("name", "served_by"),
    [
        ("claude-sonnet-4-5-20250929", "grok-4.20-0309-reasoning"),
        ("claude-haiku-4-5-20251001", "grok-4.20-0309-non-reasoning"),  # longer glob beats claude-*
        ("gpt-5.1-codex", "grok-4.20-0309"),
        ("gpt-5.1-codex-mini", "grok-4.20-0309-non-reasoning"),  # an exact name beats any glob
        ("grok-4.20-0309-reasoning", "grok-4.20-0309-reasoning"),  # a catalog id is never aliased
        ("grok-3", "grok-4.20-0309-heavy"),
        ("llama-3", "llama-3"),  # no match: left alone (then a 404)
        ("Claude-sonnet", "Claude-sonnet"),  # case-sensitive, as model ids are
    ],
)
def test_most_specific_entry_serves(name: str, served_by: str) -> None:
    assert ModelAliases.parse(TABLE).resolve(name) == served_by


def test_equal_globs_first_listed_wins() -> None:
    aliases = ModelAliases.parse("a*c=grok-4.20-0309,ab*=grok-4.20-0309-reasoning")
    assert aliases.resolve("abc") == "grok-4.20-0309"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("claude-*", "is not pattern=model"),
        ("=grok-4.20-0309", "is not pattern=model"),
        ("claude-*=claude-opus", "is not a model of the catalog"),
        ("a=grok-4.20-0309,a=grok-4.20-0309-reasoning", "given twice"),
    ],
)
def test_bad_tables_stop_the_start(text: str, says: str) -> None:
    with pytest.raises(SettingsError, match="GROKGATE_MODEL_ALIASES") as info:
        Settings.from_env({"GROKGATE_MODEL_ALIASES": text})
    assert says in str(info.value)


def test_settings_parse_once_and_copies_follow() -> None:
    settings = Settings.from_env({"GROKGATE_MODEL_ALIASES": TABLE})
    assert settings.aliases is settings.aliases
    copy = settings.model_copy(update={"model_aliases": "x=grok-4.20-0309"})
    assert copy.aliases.resolve("x") == "grok-4.20-0309" and copy.aliases.resolve("claude-x") == "claude-x"
    assert [e["id"] for e in settings.aliases.listing()][:2] == ["claude-*", "claude-haiku-*"]
    assert settings.aliases.listing()[1]["alias_for"] == "grok-4.20-0309-non-reasoning"
