"""The one settings object (environment, prefix `CLIPPER_`), validated at start-up."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Longest signed link S3 (SigV4) accepts, and so the cap for `link_ttl_seconds`.
MAX_LINK_TTL_SECONDS = 7 * 24 * 3600

#: Longest webhook attempt: the delivery job itself is killed after a minute.
MAX_WEBHOOK_TIMEOUT_SECONDS = 30.0
#: Longest overlap of an old and a new webhook secret.
MAX_WEBHOOK_ROTATION_SECONDS = 30 * 24 * 3600

#: Secrets that ship in the defaults; refused when `env` is `production`.
DEVELOPMENT_API_KEYS = "dev:dev-key-change-me"
DEVELOPMENT_ADMIN_KEYS = "admin:admin-key-change-me"
DEVELOPMENT_LINK_SECRET = "dev-link-secret-change-me"  # noqa: S105 (refused in production)
DEVELOPMENT_S3_SECRET = "minioadmin"  # noqa: S105 (refused in production)


def _parse_keys(raw: str) -> dict[str, str]:
    """`name:secret,name2:secret2` → {secret: name}."""
    keys: dict[str, str] = {}
    for position, item in enumerate(raw.split(","), start=1):
        item = item.strip()
        if not item:
            continue
        name, sep, secret = item.partition(":")
        if not sep or not name or not secret:
            # Name the position, not the text: the text may be a secret and errors get logged.
            raise ValueError(f"expected name:secret, item {position} is malformed")
        keys[secret] = name
    return keys


class Settings(BaseSettings):
    """Every setting Clipper reads; see the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="CLIPPER_", extra="ignore", hide_input_in_errors=True
    )

    env: Literal["development", "production"] = "development"
    state_dir: Path = Path("var")

    redis_url: str = "redis://127.0.0.1:6379/0"

    storage: Literal["s3", "local"] = "local"
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str = "minioadmin"
    s3_secret_key: SecretStr = SecretStr(DEVELOPMENT_S3_SECRET)
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    s3_public_endpoint: str | None = None
    #: Multipart part size of uploads (S3 allows 5 MiB … 5 GiB); smaller files go in one PUT.
    s3_part_size_bytes: int = Field(default=64 * 1024 * 1024, ge=5 * 1024 * 1024, le=5 * 1024**3)
    source_bucket: str = "clipper-sources"
    clip_bucket: str = "clipper-clips"
    local_storage_dir: Path = Path("var/storage")
    public_base_url: str = "http://127.0.0.1:8000"
    link_secret: SecretStr = SecretStr(DEVELOPMENT_LINK_SECRET)
    #: The link secret before the last rotation: local links it signed are still accepted
    #: (never used to sign). Remove it once the longest link signed with it has expired.
    link_secret_previous: SecretStr | None = None

    api_keys: SecretStr = SecretStr(DEVELOPMENT_API_KEYS)
    admin_keys: SecretStr = SecretStr(DEVELOPMENT_ADMIN_KEYS)
    link_ttl_seconds: int = Field(default=3600, ge=60, le=MAX_LINK_TTL_SECONDS)
    max_clip_seconds: float = Field(default=4 * 3600, gt=0)

    work_dir: Path | None = None
    ffmpeg_path: str = "ffmpeg"
    ffprobe_path: str = "ffprobe"
    ffmpeg_threads: int = Field(default=0, ge=0)
    #: Kill an FFmpeg that reports no progress for this long (a transient timeout); 0 = off.
    ffmpeg_stall_seconds: float = Field(default=60.0, ge=0)

    webhook_allow_private: bool = False
    #: One delivery attempt counts when a 2xx answer arrives within this time.
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=MAX_WEBHOOK_TIMEOUT_SECONDS)
    #: After a webhook secret is rotated, deliveries are signed with the previous secret too
    #: for this long, so receivers can switch at their own pace.
    webhook_rotation_seconds: int = Field(
        default=24 * 3600, ge=0, le=MAX_WEBHOOK_ROTATION_SECONDS
    )

    #: How long an API process reuses a source's HEAD (size, ETag) for new submits; 0 = never.
    source_stat_ttl_seconds: float = Field(default=1.0, ge=0, le=60)

    @field_validator("api_keys", "admin_keys")
    @classmethod
    def _keys_parse(cls, value: SecretStr) -> SecretStr:
        _parse_keys(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _no_default_secrets_in_production(self) -> Settings:
        if self.env != "production":
            return self
        defaults = {
            "CLIPPER_API_KEYS": self.api_keys.get_secret_value() == DEVELOPMENT_API_KEYS,
            "CLIPPER_ADMIN_KEYS": self.admin_keys.get_secret_value() == DEVELOPMENT_ADMIN_KEYS,
            "CLIPPER_LINK_SECRET": self.link_secret.get_secret_value() == DEVELOPMENT_LINK_SECRET,
            # Nothing in production was signed with the public development secret.
            "CLIPPER_LINK_SECRET_PREVIOUS": self.link_secret_previous is not None
            and self.link_secret_previous.get_secret_value() == DEVELOPMENT_LINK_SECRET,
            "CLIPPER_S3_SECRET_KEY": self.storage == "s3"
            and self.s3_secret_key.get_secret_value() == DEVELOPMENT_S3_SECRET,
        }
        bad = [name for name, is_default in defaults.items() if is_default]
        if bad:
            raise ValueError(f"default secrets refused in production: {', '.join(bad)}")
        return self

    @property
    def link_secrets_accepted(self) -> list[str]:
        """Secrets a local link may be signed with: the current one, then the previous one."""
        previous = self.link_secret_previous
        extra = [previous.get_secret_value()] if previous and previous.get_secret_value() else []
        return [self.link_secret.get_secret_value(), *extra]

    @property
    def api_key_names(self) -> dict[str, str]:
        """Client API keys: {secret: client name}."""
        return _parse_keys(self.api_keys.get_secret_value())

    @property
    def admin_key_names(self) -> dict[str, str]:
        """Admin API keys: {secret: admin name}."""
        return _parse_keys(self.admin_keys.get_secret_value())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
