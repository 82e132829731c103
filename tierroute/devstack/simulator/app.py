"""The Starlette app: /v1/messages, /v1/messages/count_tokens and the /_sim admin endpoints."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tierroute.devstack.simulator.batches import install as install_batches
from tierroute.devstack.simulator.cache import apply_to_usage
from tierroute.devstack.simulator.config import TIMEOUT_CODE, SimulatorConfig
from tierroute.devstack.simulator.faults import (
    error_response,
    fault_response,
    wait_unless_disconnected,
)
from tierroute.devstack.simulator.reply import build_reply, message_body
from tierroute.devstack.simulator.state import CLIENT_CLOSED, CLIENT_HEADER, SimulatorState
from tierroute.devstack.simulator.stream import EventStreamResponse, message_events
from tierroute.devstack.simulator.tokens import count_input_tokens
from tierroute.devstack.simulator.validation import (
    InvalidRequest,
    require_model,
    validate_messages,
    validate_request,
)


def _request_id() -> str:
    # Unique per call, like the real API; message ids are the deterministic part.
    return f"req_sim_{uuid.uuid4().hex[:24]}"


def _state(request: Request) -> SimulatorState:
    state: SimulatorState = request.app.state.sim
    return state


async def _json_body(request: Request) -> Any:
    """The parsed JSON body; InvalidRequest if it is not JSON."""
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except ValueError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from exc


async def create_message(request: Request) -> Response:
    """POST /v1/messages: validate, maybe inject a fault, wait, answer (JSON or SSE)."""
    state = _state(request)
    request_id = _request_id()
    try:
        body = await _json_body(request)
    except InvalidRequest as exc:
        return error_response(400, exc.message, request_id)
    model = body.get("model") if isinstance(body, dict) else None
    model = model if isinstance(model, str) and model else "unknown"
    config = state.config
    client = request.headers.get(CLIENT_HEADER) or None
    state.arrived(model)
    state.started(client)
    status: int = 500
    usage: tuple[int, int] | None = None
    handed_off = False  # a stream reports its own end to the stats
    try:
        try:
            parsed = validate_request(body, state.table)
        except InvalidRequest as exc:
            status = 400
            return error_response(400, exc.message, request_id)
        fault = state.next_fault(model)
        if fault is not None and fault != TIMEOUT_CODE:
            status = fault
            return fault_response(fault, config, request_id)
        if fault == TIMEOUT_CODE and not await wait_unless_disconnected(
            request, config.timeout_sleep_s
        ):
            status = CLIENT_CLOSED
            return Response(status_code=CLIENT_CLOSED)
        input_tokens = count_input_tokens(body)
        reply = build_reply(parsed, body, config, input_tokens)
        latency = state.latency_s(model, reply.output_tokens)
        message = message_body(parsed, body, reply, input_tokens)
        # A prefix this request writes is readable once it has answered (simulator/cache.py).
        cached = request.app.state.prompt_cache.use(parsed.model, body, state.table, latency)
        apply_to_usage(message["usage"], cached)
        usage = (input_tokens, reply.output_tokens)
        headers = {"request-id": request_id}
        if parsed.stream:
            # The latency is spent while streaming, so it is not awaited here.
            handed_off = True
            return EventStreamResponse(
                message_events(message),
                latency,
                _stream_done(state, model, usage, client),
                headers,
            )
        if not await wait_unless_disconnected(request, latency):
            status = CLIENT_CLOSED
            return Response(status_code=CLIENT_CLOSED)
        status = 200
        if config.trickle_s > 0 and config.faults_apply_to(parsed.model):
            return trickled(JSONResponse(message, headers=headers), config.trickle_s)
        return JSONResponse(message, headers=headers)
    finally:
        if not handed_off:
            state.finished(model, status, usage if status == 200 else None, client)


TRICKLE_GAP_S = 0.25


def trickled(response: Response, over_s: float) -> StreamingResponse:
    """`response` with its body sent in pieces TRICKLE_GAP_S apart, over `over_s`."""
    body = bytes(response.body)
    pieces = max(2, int(over_s / TRICKLE_GAP_S) + 1)
    size = -(-len(body) // pieces)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), size):
            if start:
                await asyncio.sleep(TRICKLE_GAP_S)
            yield body[start : start + size]

    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return StreamingResponse(chunks(), status_code=response.status_code, headers=headers)


def _stream_done(
    state: SimulatorState, model: str, usage: tuple[int, int], client: str | None
) -> Callable[[bool], None]:
    """The stats callback for a stream: 200 when fully sent, 499 when the client left."""

    def done(completed: bool) -> None:
        if completed:
            state.finished(model, 200, usage, client)
        else:
            state.finished(model, CLIENT_CLOSED, client=client)

    return done


async def count_tokens(request: Request) -> Response:
    """POST /v1/messages/count_tokens: the input tokens /v1/messages would bill."""
    request_id = _request_id()
    try:
        body = await _json_body(request)
        require_model(body)
        validate_messages(body)
    except InvalidRequest as exc:
        return error_response(400, exc.message, request_id)
    return JSONResponse(
        {"input_tokens": count_input_tokens(body)}, headers={"request-id": request_id}
    )


async def get_config(request: Request) -> Response:
    """GET /_sim/config: the settings in force."""
    return JSONResponse(_state(request).config.model_dump(mode="json"))


async def set_config(request: Request) -> Response:
    """POST /_sim/config: change latency/fault fields at runtime (partial update)."""
    request_id = _request_id()
    try:
        changes = await _json_body(request)
        if not isinstance(changes, dict):
            raise InvalidRequest("body must be a JSON object of SimulatorConfig fields")
        config = _state(request).update(changes)
    except InvalidRequest as exc:
        return error_response(400, exc.message, request_id)
    except (ValidationError, ValueError) as exc:
        return error_response(400, str(exc), request_id)
    return JSONResponse(config.model_dump(mode="json"))


async def get_stats(request: Request) -> Response:
    """GET /_sim/stats: requests by model and status, tokens, in-flight and peak.

    Peaks are also kept per `x-tierroute-client` header value (one per process).
    """
    return JSONResponse(_state(request).snapshot())


async def get_requests(request: Request) -> Response:
    """GET /_sim/requests[?model=M]: arrival time (unix seconds) and model of each request.

    Kept since the last reset (the latest 100,000), so a test can count calls per window.
    """
    log = _state(request).arrival_log(request.query_params.get("model") or None)
    return JSONResponse({"requests": [{"t": t, "model": model} for t, model in log]})


async def reset(request: Request) -> Response:
    """POST /_sim/reset: clear stats, restart faults, restore the startup config.

    Pass ?keep_config=true (or {"keep_config": true}) to keep runtime config changes.
    """
    keep = request.query_params.get("keep_config", "").lower() in ("1", "true", "yes")
    try:
        body = await _json_body(request)
    except InvalidRequest as exc:
        return error_response(400, exc.message, _request_id())
    if isinstance(body, dict):
        keep = keep or bool(body.get("keep_config"))
    _state(request).reset(keep_config=keep)
    return JSONResponse({"ok": True, "keep_config": keep})


async def health(request: Request) -> Response:
    """GET /_sim/health: readiness probe."""
    return JSONResponse({"ok": True, "simulated": True})


async def _http_error(request: Request, exc: Exception) -> Response:
    # Unknown paths and wrong methods get the API's error envelope, not plain text.
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return error_response(status, f"{request.method} {request.url.path}: {exc}", _request_id())


async def _unexpected(request: Request, exc: Exception) -> Response:
    return error_response(500, f"simulator bug: {type(exc).__name__}: {exc}", _request_id())


def create_app(config: SimulatorConfig | None = None) -> Starlette:
    """A simulated Anthropic Messages API; `config` defaults to TIERROUTE_SIM_* settings."""
    app = Starlette(
        routes=[
            Route("/v1/messages", create_message, methods=["POST"]),
            Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
            Route("/_sim/health", health, methods=["GET"]),
            Route("/_sim/config", get_config, methods=["GET"]),
            Route("/_sim/config", set_config, methods=["POST"]),
            Route("/_sim/stats", get_stats, methods=["GET"]),
            Route("/_sim/requests", get_requests, methods=["GET"]),
            Route("/_sim/reset", reset, methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _unexpected},
    )
    app.state.sim = SimulatorState(config if config is not None else SimulatorConfig())
    install_batches(app)  # Message Batches and the prompt cache (simulator/batches.py)
    return app
