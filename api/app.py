"""The FastAPI application: a thin HTTP adapter over the tierroute core."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from api.auth import KeyCache
from api.errors import install_error_handlers
from api.metrics import REQUESTS
from api.queue import Enqueuer
from api.routes import batches, dashboard, jobs, system
from api.schemas import error_responses
from tierroute import __version__
from tierroute.errors import ConfigurationError
from tierroute.runtime import get_runtime, reset_runtime

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Per-process resources are built here, not at import.
    runtime = get_runtime(role="api")
    if not runtime.settings.broker_url:
        raise ConfigurationError("TIERROUTE_BROKER_URL is not set")
    app.state.runtime = runtime
    app.state.enqueuer = Enqueuer(
        runtime.settings.broker_url, runtime.settings.visibility_timeout_s
    )
    if runtime.settings.simulated:
        log.warning("no ANTHROPIC_API_KEY: model calls go to the simulator")
    # Move everything built at startup out of the collector's reach, so full
    # collections stay short and do not show up as request latency spikes.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        app.state.enqueuer.close()
        reset_runtime()


def create_app() -> FastAPI:
    """Build the app; `uvicorn api.app:app` serves the module-level instance."""
    application = FastAPI(
        title="tierroute",
        version=__version__,
        summary="Route each prompt to the cheapest Claude tier that answers it well.",
        lifespan=lifespan,
        # Validation errors answer {error, detail} (api/errors.py), not FastAPI's shape.
        responses=error_responses(422),
    )
    install_error_handlers(application)
    application.state.key_cache = KeyCache()
    application.include_router(jobs.router)
    application.include_router(batches.router)
    application.include_router(system.router)
    application.include_router(dashboard.router)

    @application.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        return response

    return application


app = create_app()
