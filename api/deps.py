"""Request dependencies as `Annotated` aliases: settings, Redis, storage, the calling client.

They are `async def` on purpose: none of them blocks, and FastAPI runs every plain `def`
dependency in the thread pool: four thread hops per request cost more CPU than the work.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis import Redis

from api.inline_submit import InlineSubmits
from api.problems import ApiProblem
from clipper.settings import Settings
from clipper.storage import Storage
from workers.submit import SubmitContext

_bearer = HTTPBearer(auto_error=False, description="an API key from CLIPPER_API_KEYS")


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_redis(request: Request) -> Redis:
    """The app's Redis client (short timeouts: an outage becomes a 503)."""
    conn: Redis = request.app.state.redis
    return conn


async def get_storage(request: Request) -> Storage:
    """The app's storage backend."""
    storage: Storage = request.app.state.storage
    return storage


@dataclass(frozen=True)
class Services:
    """Everything the submit route needs from the app, as one dependency: FastAPI's
    dependency solving costs tens of microseconds per node on every request."""

    #: For submits in the thread pool: the app's Redis client, storage, settings and
    #: source-HEAD memory (`workers.submit.source_stats`).
    submits: SubmitContext
    #: Warm submits on the event loop, with their own Redis client (`api.inline_submit`).
    inline: InlineSubmits


async def get_services(request: Request) -> Services:
    """The app's submit context and warm-submit runner."""
    services: Services = request.app.state.services
    return services


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
RedisDep = Annotated[Redis, Depends(get_redis)]
StorageDep = Annotated[Storage, Depends(get_storage)]
ServicesDep = Annotated[Services, Depends(get_services)]


async def current_client(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The client name for the bearer key; 401 problem when missing or unknown."""
    settings: Settings = request.app.state.settings
    challenge = {"WWW-Authenticate": 'Bearer realm="clipper"'}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiProblem(401, "unauthorized", "missing bearer API key", headers=challenge)
    offered = credentials.credentials.encode()
    client: str | None = None
    for secret, name in settings.api_key_names.items():
        # Compare against every key in constant time; never short-circuit on a match.
        if hmac.compare_digest(secret.encode(), offered):
            client = name
    if client is None:
        raise ApiProblem(
            401,
            "unauthorized",
            "unknown API key",
            headers={"WWW-Authenticate": 'Bearer realm="clipper", error="invalid_token"'},
        )
    return client


ClientDep = Annotated[str, Depends(current_client)]
