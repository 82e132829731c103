"""The FastAPI application: a thin HTTP adapter over the tierroute core."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import KeyCache
from api.errors import install_error_handlers
from api.ingress import Ingress
from api.metrics import REQUESTS
from api.queue import Enqueuer
from api.routes import batches, dashboard, jobs, message_batches, messages, system
from api.schemas import error_responses
from tierroute import __version__
from tierroute.domain.errors import ConfigurationError
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
    # Sync routes run in anyio's thread pool (40 threads by default). Beyond the DB
    # pool (plus its overflow) a thread only waits for a connection, and under load
    # forty threads contending for the GIL cost more CPU than they serve.
    to_thread.current_default_thread_limiter().total_tokens = 2 * runtime.settings.db_pool_size
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
        # Validation errors answer {error, detail} (api/errors.py), not FastAPI's shape;
        # every route has a body limit (api/ingress.py).
        responses=error_responses(413, 422),
    )
    install_error_handlers(application)
    application.state.key_cache = KeyCache()
    application.include_router(jobs.router)
    application.include_router(batches.router)
    application.include_router(messages.router)
    application.include_router(message_batches.router)
    application.include_router(system.router)
    application.include_router(dashboard.router)

    # Added first, so it runs inside CountRequests: refused requests are counted too.
    application.add_middleware(Ingress)
    application.add_middleware(CountRequests)
    return application


class CountRequests:
    """Counts requests by method, route and status for /metrics.

    A plain ASGI middleware: Starlette's BaseHTTPMiddleware (`@app.middleware`) runs
    each request through an extra task and stream, which showed in the API's profile.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception before the response starts is a server error

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], path, str(status)).inc()


app = create_app()
