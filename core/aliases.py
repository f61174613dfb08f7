"""Model aliases: the model names clients hard-code (`claude-sonnet-4-5`, `gpt-5.1-codex`) mapped onto
public ids of the catalog (`GROKGATE_MODEL_ALIASES`).

The setting is a comma-separated list of `pattern=model`. A pattern is a model name or a glob (`*` any
run of characters, `?` one character). Which entry serves a requested name:

1. a public id of the catalog is always itself (an alias never hides a real model);
2. else an entry whose pattern is the name exactly;
3. else the matching glob with the most literal (non-wildcard) characters, so `claude-haiku-*` beats
   `claude-*` for `claude-haiku-4-5`; of two equally specific globs the one listed first wins.

A name that matches nothing is left as it is (and is then a 404 `model_not_found`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from core.catalog import get_model, known_model

_WILDCARDS = "*?["


@dataclass(frozen=True, slots=True)
class Alias:
    """One `pattern=target` entry; `target` is a public id of the catalog."""

    pattern: str
    target: str

    @property
    def is_glob(self) -> bool:
        return any(c in self.pattern for c in _WILDCARDS)

    @property
    def specificity(self) -> int:
        return sum(c not in _WILDCARDS for c in self.pattern)

    def model_object(self, name: str) -> dict[str, object]:
        """`name` (the pattern, or a name it matched) as a model object, `alias_for` its target."""
        return {
            **get_model(self.target).to_openai(),
            "id": name,
            "owned_by": "grokgate",
            "alias_for": self.target,
        }


@dataclass(frozen=True, slots=True)
class ModelAliases:
    """The parsed alias table. `resolve(name)` gives the public id that serves `name`."""

    entries: tuple[Alias, ...] = ()

    @classmethod
    def parse(cls, text: str) -> ModelAliases:
        """`claude-*=grok-4.20-0309-reasoning,gpt-5*=grok-4.20-0309`; a `ValueError` names a bad entry
        (no `=`, an empty side, a target that is not a public model id, a pattern given twice)."""
        entries: list[Alias] = []
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                continue
            pattern, sep, target = (part.strip() for part in item.partition("="))
            if not sep or not pattern or not target:
                raise ValueError(f"{item!r} is not pattern=model")
            if not known_model(target):
                raise ValueError(f"{item!r}: {target!r} is not a model of the catalog (see /v1/models)")
            if any(e.pattern == pattern for e in entries):
                raise ValueError(f"{pattern!r} is given twice")
            entries.append(Alias(pattern, target))
        return cls(tuple(entries))

    def match(self, name: str) -> Alias | None:
        """The entry that serves `name`, or None (catalog ids and unmatched names)."""
        if known_model(name):
            return None
        best: Alias | None = None
        for entry in self.entries:
            if entry.pattern == name:
                return entry
            better = best is None or entry.specificity > best.specificity
            if better and entry.is_glob and fnmatchcase(name, entry.pattern):
                best = entry
        return best

    def resolve(self, name: str) -> str:
        entry = self.match(name)
        return entry.target if entry is not None else name

    def listing(self) -> list[dict[str, object]]:
        """The entries as model objects of `/v1/models` (`id` the pattern, `alias_for` its target)."""
        return [e.model_object(e.pattern) for e in self.entries]
