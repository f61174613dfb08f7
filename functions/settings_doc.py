"""Print the README's settings table from the Settings model: `python -m functions.settings_doc`.

tests/test_readme.py checks that README.md carries exactly this table, so the two cannot drift.
"""

from __future__ import annotations

from core.settings import Settings

LONG = 40


def _default(value: object) -> str:
    if isinstance(value, tuple):
        value = ",".join(value) or "(empty)"
    if value is None:
        value = "(unset)"
    text = str(value)
    return text if len(text) <= LONG else text[: LONG - 1] + "…"


def settings_table() -> str:
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        rows.append(f"| `{Settings.variable(name)}` | `{_default(field.default)}` | {field.description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(settings_table(), end="")
