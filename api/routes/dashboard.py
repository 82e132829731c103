"""GET /dashboard: the cost dashboard as server-rendered HTML, for a browser.

A browser cannot add a Bearer header to a page it navigates to, but it asks for
HTTP basic credentials when told to. So the dashboard takes the API key either as
`Authorization: Bearer <key>` (scripts, `tierroute report --html`) or as the basic
auth password (any user name). Keys stay out of URLs, and so out of access logs.
Like /v1/report, it shows the caller key's jobs only.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from api.auth import KeyCache, get_key_cache, resolve_key
from api.deps import get_rt
from api.schemas import error_responses
from tierroute.dashboard import CONTENT_SECURITY_POLICY, dashboard_html
from tierroute.domain.errors import Unauthorized
from tierroute.runtime import Runtime
from tierroute.store.engine import session_scope

router = APIRouter(tags=["dashboard"], responses=error_responses(401))


class DashboardUnauthorized(Unauthorized):
    """401 that makes a browser show its password prompt."""

    challenge = 'Basic realm="tierroute dashboard", charset="UTF-8"'


def _raw_key(authorization: str | None) -> str | None:
    scheme, _, param = (authorization or "").partition(" ")
    param = param.strip()
    if scheme.lower() == "bearer" and param:
        return param
    if scheme.lower() == "basic" and param:
        try:
            decoded = base64.b64decode(param, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, sep, password = decoded.partition(":")
        return password if sep and password else None
    return None


async def dashboard_caller(
    request: Request, cache: Annotated[KeyCache, Depends(get_key_cache)]
) -> uuid.UUID:
    """The key id from a Bearer header or a basic-auth password; 401 asks for basic."""
    raw = _raw_key(request.headers.get("authorization"))
    if raw is None:
        raise DashboardUnauthorized(
            "sign in with your API key as the password (any user name), "
            "or send `Authorization: Bearer <key>`"
        )
    key_id = await resolve_key(cache, raw)
    if key_id is None:
        raise DashboardUnauthorized("unknown or revoked API key")
    return key_id


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(
    caller: Annotated[uuid.UUID, Depends(dashboard_caller)],
    rt: Annotated[Runtime, Depends(get_rt)],
    days: Annotated[int, Query(ge=1, le=366, description="days drawn in the day charts")] = 30,
) -> HTMLResponse:
    """Spend per tier per day, savings against all-Opus, tier distribution,
    satisfaction by tier and the top batches, for the caller's key. Authenticate
    with `Authorization: Bearer <key>` or HTTP basic auth with the key as password."""
    with session_scope() as session:
        page = dashboard_html(session, rt.tiers, api_key_id=caller, days=days)
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
