import json

import pytest

from core.settings import Settings, SettingsError
from functions.cli import check_exposure, main


@pytest.fixture
def store_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    monkeypatch.setenv("GROKGATE_STORE", f"sqlite:///{tmp_path}/pool.db")
    return tmp_path


def test_import_list_remove(store_env, capsys, monkeypatch):
    tokens = store_env / "tokens.txt"
    tokens.write_text("sso=alpha-token-0001\nbeta-token-00002\nalpha-token-0001\n\u00e9\n")
    assert main(["accounts", "import", str(tokens), "--no-detect"]) == 0
    assert capsys.readouterr().out.splitlines() == ["added 2, skipped 1, invalid 1", "tiers: basic 2"]

    import io

    monkeypatch.setattr(
        "sys.stdin",
        io.StringIO(
            json.dumps(
                [{"token": "beta-token-00002"}, {"token": "gamma-token-0003", "tier": "heavy", "note": "big"}]
            )
        ),
    )
    assert main(["accounts", "import", "-", "--no-detect"]) == 0
    assert capsys.readouterr().out.splitlines() == ["added 1, skipped 1, invalid 0", "tiers: heavy 1"]

    assert main(["accounts", "list"]) == 0
    listing = capsys.readouterr().out
    assert "3 account(s)" in listing
    assert "alpha-token-0001" not in listing and "alph…0001" in listing
    assert "heavy" in listing and "big" in listing

    account_id = next(line.split()[0] for line in listing.splitlines() if "heavy" in line)
    assert main(["accounts", "remove", account_id]) == 0
    assert main(["accounts", "remove", account_id]) == 1
    capsys.readouterr()
    main(["accounts", "list"])
    assert "2 account(s)" in capsys.readouterr().out


def test_configuration_errors_exit_2_with_the_variable(store_env, monkeypatch, capsys):
    monkeypatch.setenv("GROKGATE_PORT", "not-a-port")
    assert main(["accounts", "list"]) == 2
    assert "GROKGATE_PORT" in capsys.readouterr().err


def test_exposure_rules():
    open_settings = Settings.from_env({})
    check_exposure(open_settings, "127.0.0.1")
    check_exposure(open_settings, "::1")
    check_exposure(open_settings, "localhost")
    with pytest.raises(SettingsError, match="GROKGATE_API_KEYS"):
        check_exposure(open_settings, "0.0.0.0")
    check_exposure(Settings.from_env({"GROKGATE_API_KEYS": "k"}), "0.0.0.0")
    with pytest.raises(SettingsError, match="GROKGATE_ADMIN_KEY"):
        check_exposure(Settings.from_env({"GROKGATE_API_KEYS": "k", "GROKGATE_ENV": "production"}), "0.0.0.0")


def test_serve_refuses_a_public_address_without_keys(store_env, capsys):
    assert main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    assert "GROKGATE_API_KEYS" in capsys.readouterr().err


def test_secrets_at_rest_from_the_cli(store_env, capsys, monkeypatch):
    """Tokens imported with GROKGATE_SECRET_KEY are ciphertext in the file; list masks, export
    decrypts; `secrets rotate` seals older tokens under a new first key."""
    import json
    import sqlite3

    assert main(["secrets", "new-key"]) == 0
    old = capsys.readouterr().out.strip()
    assert main(["secrets", "new-key"]) == 0
    new = capsys.readouterr().out.strip()
    tokens = store_env / "tokens.txt"
    tokens.write_text("plain-before-encryption-0001\n")
    assert main(["accounts", "import", str(tokens), "--no-detect"]) == 0  # no key yet: stored plain
    monkeypatch.setenv("GROKGATE_SECRET_KEY", old)
    tokens.write_text("sealed-at-import-token-0002\n")
    assert main(["accounts", "import", str(tokens), "--no-detect"]) == 0
    capsys.readouterr()

    def stored() -> list[str]:
        with sqlite3.connect(store_env / "pool.db") as db:
            return sorted(row[0] for row in db.execute("SELECT token FROM accounts"))

    raw = b"".join(p.read_bytes() for p in store_env.glob("pool.db*"))
    assert b"sealed-at-import-token-0002" not in raw
    assert sum(t.startswith("gg1.") for t in stored()) == 1
    assert main(["accounts", "list"]) == 0
    assert "sealed-at-import-token-0002" not in capsys.readouterr().out
    assert main(["accounts", "export"]) == 0
    exported = {a["token"] for a in json.loads(capsys.readouterr().out)["accounts"]}
    assert exported == {"plain-before-encryption-0001", "sealed-at-import-token-0002"}

    monkeypatch.setenv("GROKGATE_SECRET_KEY", f"{new},{old}")
    assert main(["secrets", "rotate"]) == 0
    assert capsys.readouterr().out.startswith("re-sealed 2 of 2")
    monkeypatch.setenv("GROKGATE_SECRET_KEY", new)
    assert all(t.startswith("gg1.") for t in stored())
    assert main(["accounts", "export"]) == 0
    assert {a["token"] for a in json.loads(capsys.readouterr().out)["accounts"]} == exported


def test_production_refuses_to_serve_without_a_secret_key(store_env, capsys, monkeypatch):
    monkeypatch.setenv("GROKGATE_ENV", "production")
    monkeypatch.setenv("GROKGATE_API_KEYS", "k")
    monkeypatch.setenv("GROKGATE_ADMIN_KEY", "a")
    assert main(["serve", "--host", "127.0.0.1", "--port", "1"]) == 2
    assert "GROKGATE_SECRET_KEY: required" in capsys.readouterr().err
