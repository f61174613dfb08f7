"""The README's settings table, from the Settings model: `python -m functions.settings_doc [--write]`.

Without `--write` it prints the table; with it, it replaces the table in README.md in place (what to run
after adding a setting, or after a merge in which two changes added one each).

tests/test_readme.py checks that README.md carries exactly this table, so the two cannot drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

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


def rewrite_readme(readme: Path) -> None:
    """Replace the settings table in `readme` (header row to the first blank line) with the current one."""
    lines = readme.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("| Variable | Default | Meaning |"))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    readme.write_text("".join(lines[:start]) + settings_table() + "".join(lines[end:]))


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        rewrite_readme(Path(__file__).resolve().parent.parent / "README.md")
    else:
        print(settings_table(), end="")
