"""Anthropic-style error responses and the waits used for latency and timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import time

from starlette.requests import Request
from starlette.responses import JSONResponse

from tierroute.devstack.simulator.config import ERROR_TYPES, SimulatorConfig

_FAULT_MESSAGES = {
    400: "Simulated invalid request (injected fault)",
    401: "Simulated authentication failure (injected fault)",
    403: "Simulated permission error (injected fault)",
    404: "Simulated not found (injected fault)",
    413: "Simulated request too large (injected fault)",
    429: "Simulated rate limit exceeded (injected fault)",
    500: "Simulated internal server error (injected fault)",
    504: "Simulated gateway timeout (injected fault)",
    529: "Simulated overload (injected fault)",
}


def _error_type(status: int) -> str:
    """The API's error.type for an HTTP status (other 4xx are the caller's fault)."""
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "invalid_request_error" if status < 500 else "api_error"


def error_response(
    status: int, message: str, request_id: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The API's error envelope: {"type": "error", "error": {type, message}, request_id}."""
    body = {
        "type": "error",
        "error": {"type": _error_type(status), "message": message},
        "request_id": request_id,
    }
    all_headers = {"request-id": request_id, **(headers or {})}
    return JSONResponse(body, status_code=status, headers=all_headers)


def format_seconds(seconds: float) -> str:
    """Whole seconds as an integer string (the API's form), fractions as a decimal."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def fault_response(status: int, config: SimulatorConfig, request_id: str) -> JSONResponse:
    """The error answer for an injected fault with HTTP status `status`."""
    headers: dict[str, str] = {}
    if status == 429 and config.retry_after_s is not None:
        headers["retry-after"] = format_seconds(config.retry_after_s)
    if status in (429, 500, 529):
        # The real API tells SDKs these are worth retrying.
        headers["x-should-retry"] = "true"
    message = _FAULT_MESSAGES.get(status, "Simulated error")
    return error_response(status, message, request_id, headers)


async def wait_unless_disconnected(request: Request, seconds: float) -> bool:
    """Sleep `seconds`; stop early and return False if the client hangs up.

    Waiting on the ASGI receive channel (the body is already read, so the next
    message can only be http.disconnect) frees abandoned requests at once, so a
    benchmark that times out does not leave thousands of sleepers behind.
    """
    if seconds <= 0:
        return True
    started = time.monotonic()
    listener = asyncio.ensure_future(request.receive())
    try:
        done, _ = await asyncio.wait({listener}, timeout=seconds)
    finally:
        if not listener.done():
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
    if not done:
        return True
    if listener.result().get("type") == "http.disconnect":
        return False
    # Anything else (should not happen once the body is read): just sleep out the rest.
    await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))
    return True
