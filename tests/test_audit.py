"""ci/audit.py: what a pip-audit report means for `make test`."""

from __future__ import annotations

from ci.audit import summarize


def test_a_known_vulnerability_is_reported_with_its_fix() -> None:
    report = {
        "dependencies": [
            {"name": "jinja2", "version": "2.0", "vulns": [{"id": "PYSEC-1", "fix_versions": ["2.11.3"]}]},
            {"name": "ok", "version": "1.0", "vulns": []},
            {"name": "mirror-only", "skip_reason": "Dependency not found on PyPI"},
        ]
    }
    found, audited, unknown = summarize(report)
    assert found == ["jinja2 2.0: PYSEC-1 (fixed in 2.11.3)"]
    assert (audited, unknown) == (2, 1)


def test_a_clean_report_finds_nothing() -> None:
    assert summarize({"dependencies": [{"name": "a", "version": "1", "vulns": []}]}) == ([], 1, 0)
