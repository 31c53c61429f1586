"""Admin credentials for the ops surface: Bearer admin key, or HTTP Basic admin name + key."""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Literal

from clipper.settings import Settings

#: Realm announced in `WWW-Authenticate` so browsers offer a login prompt on the dashboard.
REALM = "Clipper ops"

Verdict = Literal["admin", "client", "missing", "invalid"]


@dataclass(frozen=True)
class AdminCheck:
    """Outcome of checking an Authorization header: who, and whether they are an admin."""

    verdict: Verdict
    name: str | None = None


def _match(secret: str, keys: dict[str, str]) -> str | None:
    # Compare against every key, so timing does not reveal which prefix matched.
    found = None
    for candidate, name in keys.items():
        if hmac.compare_digest(candidate.encode(), secret.encode()):
            found = name
    return found


def check_authorization(header: str | None, settings: Settings) -> AdminCheck:
    """Classify an Authorization header: admin key, client key (403), missing or invalid (401)."""
    if not header:
        return AdminCheck("missing")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    admins = settings.admin_key_names
    if scheme.lower() == "bearer" and value:
        name = _match(value, admins)
        if name is not None:
            return AdminCheck("admin", name)
        client = _match(value, settings.api_key_names)
        return AdminCheck("client", client) if client is not None else AdminCheck("invalid")
    if scheme.lower() == "basic" and value:
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return AdminCheck("invalid")
        name = _match(password, admins) if sep else None
        if name is not None and hmac.compare_digest(name.encode(), user.encode()):
            return AdminCheck("admin", name)
        return AdminCheck("invalid")
    return AdminCheck("invalid")


def challenge_header() -> dict[str, str]:
    """The `WWW-Authenticate` header of a 401 from the ops surface."""
    return {"WWW-Authenticate": f'Basic realm="{REALM}", Bearer realm="{REALM}"'}
