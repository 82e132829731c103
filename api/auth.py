"""Bearer API keys: the `CallerKey` dependency every /v1 route takes."""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from tierroute.domain.errors import Unauthorized
from tierroute.store.engine import session_scope
from tierroute.store.keys import active_key_id, hash_key

# How long a good key stays trusted without asking Postgres again; a revoked key
# keeps working for at most this long in each API process (docs/operations.md, "API keys").
KEY_CACHE_TTL_S = 30.0
KEY_CACHE_MAX = 10_000
# Where the ingress middleware leaves the id of the key it checked.
API_KEY_SCOPE = "tierroute.api_key_id"

# auto_error=False: we raise our own 401 in the `{error, detail}` shape. The scheme
# still shows in /openapi.json, so /docs offers an Authorize button.
bearer = HTTPBearer(auto_error=False, description="an API key from `tierroute keys create`")
# The same key as Anthropic's SDK sends its own, so SDK code needs only a new base_url.
api_key_header = APIKeyHeader(
    name="x-api-key", auto_error=False, description="an API key, as Anthropic's SDK sends it"
)


class KeyCache:
    """Hash → key id for recently seen good keys, so hot GETs skip the lookup."""

    def __init__(self, ttl_s: float = KEY_CACHE_TTL_S, max_entries: int = KEY_CACHE_MAX) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[uuid.UUID, float]] = {}

    def get(self, key_hash: str) -> uuid.UUID | None:
        """The cached key id, or None when absent or older than the TTL."""
        entry = self._entries.get(key_hash)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, key_hash: str, key_id: uuid.UUID) -> None:
        """Remember a good key; unknown keys are never cached, so junk cannot fill it."""
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key_hash] = (key_id, time.monotonic() + self.ttl_s)


def get_key_cache(request: Request) -> KeyCache:
    cache: KeyCache = request.app.state.key_cache
    return cache


def _lookup(key_hash: str) -> uuid.UUID | None:
    with session_scope() as session:
        return active_key_id(session, key_hash)


async def require_api_key(
    request: Request,
    cache: Annotated[KeyCache, Depends(get_key_cache)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    x_api_key: Annotated[str | None, Depends(api_key_header)] = None,
) -> uuid.UUID:
    """The caller's key id; 401 for a missing, malformed, unknown or revoked key."""
    # The ingress middleware (api/ingress.py) checked the key before the body was
    # read; this dependency still declares the scheme in /openapi.json.
    checked: uuid.UUID | None = request.scope.get(API_KEY_SCOPE)
    if checked is not None:
        return checked
    # Never put the key itself in a message or a log line, only say what is wrong.
    raw_key = credentials.credentials if credentials is not None else x_api_key
    if not raw_key:
        raise Unauthorized("send an API key as `Authorization: Bearer <key>` or `x-api-key: <key>`")
    key_id = await resolve_key(cache, raw_key)
    if key_id is None:
        raise Unauthorized("unknown or revoked API key")
    return key_id


async def resolve_key(cache: KeyCache, raw_key: str) -> uuid.UUID | None:
    """The id of an active key, from the cache or Postgres; None if unknown or revoked."""
    key_hash = hash_key(raw_key)
    key_id = cache.get(key_hash)
    if key_id is None:
        # Async so a cache hit stays on the event loop; only a miss pays for a
        # thread and a query.
        key_id = await run_in_threadpool(_lookup, key_hash)
        if key_id is not None:
            cache.put(key_hash, key_id)
    return key_id


CallerKey = Annotated[uuid.UUID, Depends(require_api_key)]
