"""CLI account operations beyond import/list/remove: export, disable, enable, reset, refresh."""

import json

from core.accounts import account_id_for
from functions.cli import main


def test_export_disable_enable_reset_refresh(tmp_path, monkeypatch, capsys, sim):
    monkeypatch.setenv("GROKGATE_STORE", f"sqlite:///{tmp_path}/pool.db")
    monkeypatch.setenv("GROKGATE_UPSTREAM_URL", sim.url)
    monkeypatch.chdir(tmp_path)
    sim.accounts.register("cli-token-aaaaaaaaaaaa", tier="basic")
    (tmp_path / "tokens.txt").write_text("cli-token-aaaaaaaaaaaa\n")
    assert main(["accounts", "import", str(tmp_path / "tokens.txt"), "--tier", "basic"]) == 0
    account_id = account_id_for("cli-token-aaaaaaaaaaaa")
    capsys.readouterr()

    assert main(["accounts", "export"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["accounts"][0]["token"] == "cli-token-aaaaaaaaaaaa"
    assert main(["accounts", "disable", account_id, "--reason", "resting"]) == 0
    assert "disabled" in capsys.readouterr().out
    assert main(["accounts", "enable", account_id]) == 0
    assert main(["accounts", "reset", account_id]) == 0
    assert main(["accounts", "disable", "acc_missing"]) == 1
    capsys.readouterr()
    assert main(["accounts", "refresh", account_id]) == 0
    assert "refreshed" in capsys.readouterr().out
    assert main(["accounts", "refresh", account_id]) == 0  # at most every 300 s: skipped, not failed
    assert "skipped" in capsys.readouterr().out
    assert main(["accounts", "refresh", "acc_missing"]) == 1
