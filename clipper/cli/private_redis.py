"""`clipper up`'s private Redis: reachable on 127.0.0.1 only, and only with its password.

RQ jobs name importable functions, so whoever can write to the queues runs code as Clipper:
a Redis any local user can reach would let them. The password is generated on first run and
kept in `{CLIPPER_STATE_DIR}/redis.password` (mode 0600); redis-server reads it from a 0600
config file in its 0700 data folder, never from its command line (which every local user
can read in /proc). The API and workers get it inside CLIPPER_REDIS_URL, in their
environment, which only the same user can read.
"""

from __future__ import annotations

import os
import secrets
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

#: The password file, under the state dir.
PASSWORD_FILE = "redis.password"  # noqa: S105 (a file name)
#: The config file redis-server reads its password from, in its data folder.
CONFIG_FILE = "clipper-auth.conf"
#: Random bytes in a generated password (URL-safe base64: no escaping in a URL).
PASSWORD_BYTES = 32
#: Where it listens.
HOST = "127.0.0.1"


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by this user only (also when the file existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)


def load_password(state_dir: Path) -> str:
    """The private Redis's password: the one in the state dir, or a new one saved there."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / PASSWORD_FILE
    if path.exists():
        path.chmod(0o600)
        password = path.read_text().strip()
        if password:
            return password
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    _write_private(path, password + "\n")
    return password


@dataclass(frozen=True)
class PrivateRedis:
    """The private Redis of one state dir: where it listens, its password, its files."""

    state_dir: Path
    port: int
    password: str

    @classmethod
    def from_url(cls, state_dir: Path, url: str) -> PrivateRedis:
        """The private Redis that `url` (made by `url` below) points at."""
        parts = urlsplit(url)
        if parts.port is None or not parts.password:
            raise ValueError("not a private Redis URL")
        return cls(state_dir, parts.port, parts.password)

    @property
    def url(self) -> str:
        """CLIPPER_REDIS_URL for the API and workers (it holds the password)."""
        return f"redis://:{self.password}@{HOST}:{self.port}/0"

    @property
    def shown_url(self) -> str:
        """The URL without its password, for the banner."""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def data_dir(self) -> Path:
        """Redis's data folder (AOF files: clip records, webhook secrets)."""
        return self.state_dir / "redis"

    @property
    def password_file(self) -> Path:
        """Where the password is kept."""
        return self.state_dir / PASSWORD_FILE

    def write_config(self) -> Path:
        """The data folder (0700) and the config file holding the password (0600)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # the AOF holds webhook secrets and clip records
        config = self.data_dir / CONFIG_FILE
        _write_private(config, f"requirepass {self.password}\n")
        return config

    def cli_command(self) -> str:
        """A shell command that opens `redis-cli` on it (the password read from its file)."""
        auth = f'REDISCLI_AUTH="$(cat {shlex.quote(str(self.password_file.resolve()))})"'
        return f"{auth} redis-cli -h {HOST} -p {self.port}"
