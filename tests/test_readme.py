"""The README is part of the product: its settings table and commands must stay true."""

from pathlib import Path

from functions.settings_doc import settings_table

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_readme_carries_the_current_settings_table():
    assert settings_table() in README, "regenerate it: python -m functions.settings_doc --write"


def test_readme_quick_start_is_the_two_make_commands():
    assert "make serve" in README and "make test" in README


def test_ci_runs_the_readme_test_command():
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert "make test" in ci and "set -euo pipefail" in ci
