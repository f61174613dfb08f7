import base64

import pytest

from core.settings import Settings, SettingsError, parse_dotenv


def test_defaults_point_at_the_real_service_and_the_embedded_store():
    settings = Settings.from_env({})
    assert settings.store == "sqlite:///./data/grokgate.db"
    assert settings.media == "./data/media"
    assert settings.upstream_url == "https://grok.com"
    assert settings.assets_url == "https://assets.grok.com"
    assert settings.accounts_url == "https://accounts.x.ai"
    assert settings.api_keys == ()


def test_values_are_parsed_from_strings():
    settings = Settings.from_env(
        {
            "GROKGATE_API_KEYS": " k1, k2 ,,k3",
            "GROKGATE_PORT": "9000",
            "GROKGATE_UPSTREAM_URL": "http://127.0.0.1:9/",
            "GROKGATE_ALLOW_PRIVATE_FETCH": "true",
            "GROKGATE_READ_TIMEOUT": "2.5",
            "UPSTASH_REDIS_REST_URL": "https://x.upstash.io",
            "PATH": "/usr/bin",
        }
    )
    assert settings.api_keys == ("k1", "k2", "k3")
    assert settings.port == 9000
    assert settings.upstream_url == "http://127.0.0.1:9"  # trailing slash trimmed
    assert settings.allow_private_fetch is True
    assert settings.read_timeout == 2.5
    assert settings.upstash_redis_rest_url == "https://x.upstash.io"


def test_settings_are_frozen():
    settings = Settings.from_env({})
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on frozen models
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("GROKGATE_PORT", "eighty", "GROKGATE_PORT"),
        ("GROKGATE_PORT", "70000", "less than or equal to 65535"),
        ("GROKGATE_STORE", "postgres://db", "sqlite:///path"),
        ("GROKGATE_UPSTREAM_URL", "grok.com", "http:// or https://"),
        ("GROKGATE_PROXY_URL", "ftp://p", "socks5://"),
        ("GROKGATE_ENV", "staging", "GROKGATE_ENV"),
        ("GROKGATE_RETRY_BUDGET", "-1", "greater than or equal to 0"),
    ],
)
def test_a_wrong_value_names_the_variable_and_the_accepted_form(name, value, expected):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: value})
    assert name in str(info.value)
    assert expected in str(info.value)


def test_an_unknown_setting_is_refused_so_typos_do_not_fall_back_silently():
    with pytest.raises(SettingsError, match="GROKGATE_API_KEY: unknown setting"):
        Settings.from_env({"GROKGATE_API_KEY": "k"})


def test_platform_variables_are_read_without_the_prefix():
    settings = Settings.from_env({"CRON_SECRET": "s3", "UPSTASH_REDIS_REST_TOKEN": "t"})
    assert settings.cron_secret == "s3"
    assert settings.upstash_redis_rest_token == "t"
    with pytest.raises(SettingsError, match="GROKGATE_CRON_SECRET: unknown"):
        Settings.from_env({"GROKGATE_CRON_SECRET": "s3"})


def test_production_requires_keys():
    with pytest.raises(SettingsError, match="GROKGATE_API_KEYS"):
        Settings.from_env({"GROKGATE_ENV": "production"}).require_production_ready()
    with pytest.raises(SettingsError, match="GROKGATE_ADMIN_KEY"):
        Settings.from_env({"GROKGATE_ENV": "production", "GROKGATE_API_KEYS": "k"}).require_production_ready()
    keyed = {"GROKGATE_ENV": "production", "GROKGATE_API_KEYS": "k", "GROKGATE_ADMIN_KEY": "a"}
    with pytest.raises(SettingsError, match="GROKGATE_SECRET_KEY: required"):
        Settings.from_env(keyed).require_production_ready()
    key = base64.b64encode(bytes(range(32))).decode()
    Settings.from_env({**keyed, "GROKGATE_SECRET_KEY": key}).require_production_ready()


def test_the_secret_key_is_32_bytes_of_base64_and_never_echoed():
    for bad in ("not-base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(SettingsError, match="GROKGATE_SECRET_KEY") as info:
            Settings.from_env({"GROKGATE_SECRET_KEY": bad})
        assert bad not in str(info.value)
    two = ",".join(base64.b64encode(bytes([n]) * 32).decode() for n in (1, 2))
    assert Settings.from_env({"GROKGATE_SECRET_KEY": two}).secret_key == two


def test_dotenv_parsing():
    text = '# comment\nexport GROKGATE_PORT=9001\nGROKGATE_API_KEYS="a,b"\n\nBROKEN LINE\n'
    assert parse_dotenv(text) == {"GROKGATE_PORT": "9001", "GROKGATE_API_KEYS": "a,b"}
