"""Who may scrape /metrics, and the per-app cache its Postgres figures come from.

/metrics shows every key's spend, so it is not open like /healthz. With
TIERROUTE_METRICS_TOKEN set, only that token is accepted (a scraper's credential:
a tenant's API key does not see other tenants' spend). Unset, any active API key
is, as for /v1/report, so a fresh deployment is never open to anyone.
"""

from __future__ import annotations

import hmac
import threading
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import KeyCache, get_key_cache, resolve_key
from api.deps import get_rt
from api.metrics import aggregate_cache
from tierroute.domain.errors import Unauthorized
from tierroute.runtime import Runtime
from tierroute.store.aggregates import AggregateCache

metrics_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="MetricsToken",
    description="TIERROUTE_METRICS_TOKEN, or while it is unset an API key",
)
_cache_lock = threading.Lock()


async def require_metrics_access(
    rt: Annotated[Runtime, Depends(get_rt)],
    keys: Annotated[KeyCache, Depends(get_key_cache)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(metrics_bearer)],
) -> None:
    """401 unless the caller sends the metrics token (or, without one, an API key)."""
    token = rt.settings.metrics_token
    if credentials is None:
        wanted = "the metrics token" if token is not None else "an API key"
        raise Unauthorized(f"send {wanted} as `Authorization: Bearer <token>`")
    if token is not None:
        # Constant time: a scraper's token must not leak through response timing.
        sent = credentials.credentials.encode()
        if not hmac.compare_digest(sent, token.get_secret_value().encode()):
            raise Unauthorized("wrong metrics token (TIERROUTE_METRICS_TOKEN)")
        return
    if await resolve_key(keys, credentials.credentials) is None:
        raise Unauthorized("unknown or revoked API key")


def get_aggregate_cache(
    request: Request, rt: Annotated[Runtime, Depends(get_rt)]
) -> AggregateCache:
    """This app's cache of the /metrics aggregates, made on the first scrape."""
    state = request.app.state
    with _cache_lock:
        cache: AggregateCache | None = getattr(state, "metrics_aggregates", None)
        if cache is None:
            cache = state.metrics_aggregates = aggregate_cache(rt.settings.metrics_cache_s)
    return cache
