"""Request dependencies: the process runtime, the enqueuer, and id parsing."""

from __future__ import annotations

import uuid

from fastapi import Request

from api.queue import Enqueuer
from tierroute.domain.errors import NotFound
from tierroute.runtime import Runtime


def get_rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_enqueuer(request: Request) -> Enqueuer:
    enqueuer: Enqueuer = request.app.state.enqueuer
    return enqueuer


def parse_id(kind: str, raw: str) -> uuid.UUID:
    """A path id as a UUID; anything else names a resource that does not exist."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"{kind} {raw} not found") from None
