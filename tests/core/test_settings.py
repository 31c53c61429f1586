"""Settings validation: limits, production secrets, key parsing, environment names."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from clipper.settings import Settings

SEVEN_DAYS = 7 * 24 * 3600

STRONG = {
    "api_keys": "site:0123456789abcdef",
    "admin_keys": "ops:fedcba9876543210",
    "link_secret": "a-long-random-link-secret",
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests must not see CLIPPER_* variables of the shell that runs them."""
    import os

    for name in list(os.environ):
        if name.startswith("CLIPPER_"):
            monkeypatch.delenv(name)


def test_link_ttl_longer_than_seven_days_is_refused() -> None:
    assert Settings(link_ttl_seconds=SEVEN_DAYS).link_ttl_seconds == SEVEN_DAYS
    with pytest.raises(ValidationError, match="link_ttl_seconds"):
        Settings(link_ttl_seconds=SEVEN_DAYS + 1)


def test_link_ttl_too_short_is_refused() -> None:
    with pytest.raises(ValidationError, match="link_ttl_seconds"):
        Settings(link_ttl_seconds=0)


def test_development_accepts_the_default_secrets() -> None:
    settings = Settings()
    assert settings.env == "development"
    assert settings.api_key_names == {"dev-key-change-me": "dev"}


@pytest.mark.parametrize("field", ["api_keys", "admin_keys", "link_secret"])
def test_production_refuses_each_default_secret(field: str) -> None:
    values = {k: v for k, v in STRONG.items() if k != field}
    with pytest.raises(ValidationError) as info:
        Settings(env="production", **values)
    # The message names the variable to set, and only that one.
    message = str(info.value)
    assert f"CLIPPER_{field.upper()}" in message
    for other in set(STRONG) - {field}:
        assert f"CLIPPER_{other.upper()}" not in message


def test_production_refuses_the_minio_default_secret_only_with_s3() -> None:
    assert Settings(env="production", storage="local", **STRONG).storage == "local"
    with pytest.raises(ValidationError, match="CLIPPER_S3_SECRET_KEY"):
        Settings(env="production", storage="s3", **STRONG)
    ok = Settings(env="production", storage="s3", s3_secret_key="not-minioadmin", **STRONG)
    assert ok.s3_secret_key.get_secret_value() == "not-minioadmin"


def test_the_previous_link_secret_is_accepted_but_not_the_development_one() -> None:
    assert Settings().link_secrets_accepted == ["dev-link-secret-change-me"]
    rotating = Settings(link_secret="new-link-secret-1", link_secret_previous="old-secret-0")
    assert rotating.link_secrets_accepted == ["new-link-secret-1", "old-secret-0"]
    with pytest.raises(ValidationError, match="CLIPPER_LINK_SECRET_PREVIOUS"):
        Settings(env="production", link_secret_previous="dev-link-secret-change-me", **STRONG)
    assert "old-secret-0" not in repr(rotating)


def test_webhook_timeout_and_rotation_limits() -> None:
    assert Settings().webhook_rotation_seconds == 24 * 3600
    assert Settings(webhook_rotation_seconds=0).webhook_rotation_seconds == 0
    with pytest.raises(ValidationError, match="webhook_timeout_seconds"):
        Settings(webhook_timeout_seconds=31)
    with pytest.raises(ValidationError, match="webhook_rotation_seconds"):
        Settings(webhook_rotation_seconds=-1)


def test_production_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPPER_ENV", "production")
    with pytest.raises(ValidationError, match="default secrets refused"):
        Settings()
    for field, value in STRONG.items():
        monkeypatch.setenv(f"CLIPPER_{field.upper()}", value)
    assert Settings().env == "production"


def test_keys_parse_into_secret_to_name() -> None:
    settings = Settings(api_keys=" site:s3cret , app:other ,", admin_keys="ops:root")
    assert settings.api_key_names == {"s3cret": "site", "other": "app"}
    assert settings.admin_key_names == {"root": "ops"}


def test_key_secret_may_contain_colons() -> None:
    assert Settings(api_keys="site:a:b:c").api_key_names == {"a:b:c": "site"}


@pytest.mark.parametrize("raw", ["nocolon", ":secret", "name:", "ok:fine,broken"])
def test_malformed_keys_are_refused(raw: str) -> None:
    with pytest.raises(ValidationError, match="name:secret"):
        Settings(api_keys=raw)


@pytest.mark.parametrize("raw", [":TOPSECRET", "site:ok,TOPSECRET", "site:TOPSECRET,x:"])
def test_malformed_key_error_does_not_echo_secrets(raw: str) -> None:
    # A start-up error ends up in logs: it must name the problem, never the keys.
    with pytest.raises(ValidationError) as info:
        Settings(api_keys=raw)
    assert "name:secret" in str(info.value)
    assert "TOPSECRET" not in str(info.value)


def test_secrets_are_hidden_in_repr() -> None:
    settings = Settings(**STRONG)
    assert STRONG["link_secret"] not in repr(settings)
    assert "0123456789abcdef" not in str(settings.model_dump())


def test_environment_names_and_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPPER_STORAGE", "s3")
    monkeypatch.setenv("CLIPPER_S3_SECURE", "true")
    monkeypatch.setenv("CLIPPER_LINK_TTL_SECONDS", "600")
    monkeypatch.setenv("CLIPPER_STATE_DIR", "/tmp/somewhere")
    settings = Settings()
    assert settings.storage == "s3"
    assert settings.s3_secure is True
    assert settings.link_ttl_seconds == 600
    assert settings.state_dir == Path("/tmp/somewhere")


def test_unknown_storage_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPPER_STORAGE", "ftp")
    with pytest.raises(ValidationError, match="storage"):
        Settings()
