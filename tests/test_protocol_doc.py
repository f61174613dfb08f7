"""The code's protocol vocabulary is defined in the repository: every endpoint (E1…), frame (F1…)
and version marker ([v2]…) a source file cites, and every `docs/<page>.md#section` it points at,
exists in docs/; no section-number citation (a section sign) of a document outside the repository is left."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "docs" / "protocol.md"

LABEL = re.compile(r"\b([EF])(\d{1,2})\b(?:-[EF]?(\d{1,2})\b)?")  # E7, F12, E13-E15
MARKER = re.compile(r"\[v\d[\d.]*\]")
SECTION_SIGN = "\u00a7"
POINTER = re.compile(r"\bdocs/([\w-]+)\.md#([\w-]+)")


def _sources() -> list[Path]:
    """The tracked Python, TOML and Markdown files (the simulator included)."""
    listed = subprocess.run(
        ["git", "ls-files", "*.py", "*.toml", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return [ROOT / name for name in listed.stdout.split() if (ROOT / name).is_file()]


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", page.read_text(), re.M)}


def _defined_labels() -> set[str]:
    """The first cell of the endpoint and frame tables: `| E7, E8 |`, `| F3 |`."""
    cells = re.findall(r"^\| ([EF]\d+(?:, [EF]\d+)*) \|", PROTOCOL.read_text(), re.M)
    return {label for cell in cells for label in cell.split(", ")}


def _cited_labels(text: str) -> set[str]:
    cited = set()
    for kind, first, last in LABEL.findall(text):
        cited |= {f"{kind}{n}" for n in range(int(first), int(last or first) + 1)}
    return cited


def test_every_cited_label_is_defined():
    defined = _defined_labels()
    missing = {
        f"{path.relative_to(ROOT)}: {label}"
        for path in _sources()
        for label in _cited_labels(path.read_text()) - defined
    }
    assert not missing, sorted(missing)


def test_every_version_marker_is_explained():
    explained = set(MARKER.findall(PROTOCOL.read_text().split("## Endpoints")[0]))
    missing = {
        f"{path.relative_to(ROOT)}: {marker}"
        for path in _sources()
        for marker in set(MARKER.findall(path.read_text())) - explained
    }
    assert not missing, sorted(missing)


def test_every_pointer_names_a_section_that_exists():
    broken = []
    for path in _sources():
        for page, anchor in POINTER.findall(path.read_text()):
            target = ROOT / "docs" / f"{page}.md"
            if not target.exists() or anchor not in _anchors(target):
                broken.append(f"{path.relative_to(ROOT)}: docs/{page}.md#{anchor}")
    assert not broken, broken


def test_links_into_the_protocol_page_name_sections_that_exist():
    anchors = _anchors(PROTOCOL)
    links = [(PROTOCOL.name, a) for a in re.findall(r"\]\(#([\w-]+)\)", PROTOCOL.read_text())]
    for page in (ROOT / "docs").glob("*.md"):
        links += [(page.name, a) for a in re.findall(r"\]\(protocol\.md#([\w-]+)\)", page.read_text())]
    broken = [f"{page}: protocol.md#{anchor}" for page, anchor in links if anchor not in anchors]
    assert links and not broken, broken


def test_no_section_number_citations_remain():
    cited = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in _sources()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if SECTION_SIGN in line
    ]
    assert not cited, cited


def test_the_checks_see_what_they_look_for():
    assert _cited_labels("E13-E15 and F3; not E501 or MEF2") == {"E13", "E14", "E15", "F3"}
    assert {"E1", "E7", "E8", "E23", "F1", "F14"} <= _defined_labels()
    assert _slug("Identity (E22)") == "identity-e22"
