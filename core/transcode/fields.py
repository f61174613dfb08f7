"""The field policy of every request body: strict on types, tolerant on names.

Clients add request fields faster than any gateway ships, so a field the gateway has never heard
of is accepted and set aside, never refused: `RequestModel` keeps it in `model_extra`, and
`unknown_fields` names every such field of a validated body, nested models included
(`reasoning.foo`). The edge reports them in `x-grokgate-ignored-params` (and at debug), or
refuses the first with a 400 when strict mode (`GROKGATE_STRICT_PARAMS`) is on. A known field
keeps its type: validation is strict, so a boolean is not a number and a number is not a boolean.

Normalisers add what they accepted but could not act on (a server-run tool, a context edit that
has no equivalent) to `ignored`, which the edge reports with the unknown names.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, PrivateAttr


class RequestModel(BaseModel):
    """Base of the request models of the three dialects (chat completions, Responses, Messages):
    unknown fields kept aside, known ones validated strictly. `ignored` collects the names the
    response reports."""

    model_config = ConfigDict(extra="allow", defer_build=True, strict=True)
    _ignored: list[str] = PrivateAttr(default_factory=list)

    @property
    def ignored(self) -> list[str]:
        """Request parts accepted but not acted on: unknown fields, dropped tools, and so on."""
        return self._ignored


def unknown_fields(model: BaseModel, prefix: str = "") -> list[str]:
    """Dotted names of the fields no model declares, in body order (`a`, `b.c`, `tools.2.x`)."""
    found = [prefix + name for name in model.model_extra or ()]
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            found += unknown_fields(value, f"{prefix}{name}.")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    found += unknown_fields(item, f"{prefix}{name}.{i}.")
    return found
