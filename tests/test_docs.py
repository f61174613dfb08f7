"""Docs that state facts about the code are checked against it."""

from __future__ import annotations

import re
from pathlib import Path

from core.catalog import MODELS

ROOT = Path(__file__).resolve().parent.parent


def test_the_model_table_is_the_catalog():
    text = (ROOT / "docs" / "models.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \| ([a-z-]+) \| `([^`]+)` \| ([a-z]+) \| ([a-z/]+) \|$", text, re.M)
    documented = {model: (kind, mode, tier, reasoning) for model, kind, mode, tier, reasoning in rows}
    expected = {
        m.id: (
            m.capability.value,
            m.mode,
            m.tier.value,
            ("yes" if m.reasoning else "no") if m.capability.value == "chat" else "n/a",
        )
        for m in MODELS
    }
    assert documented == expected


def test_doc_links_stay_inside_the_repository():
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        prose = re.sub(r"```.*?```|`[^`\n]*`", "", page.read_text(), flags=re.S)  # code is not a link
        for target in re.findall(r"\]\(([^)#\s]+)", prose):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            resolved = (page.parent / target).resolve()
            assert resolved.is_relative_to(ROOT), f"{page.name} links outside the repository: {target}"
            assert resolved.exists(), f"{page.name} links to a missing file: {target}"
