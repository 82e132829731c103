"""One place that turns errors into JSON `{"error": code, "detail": text}` responses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tierroute.domain.errors import TierrouteError

log = logging.getLogger(__name__)


def error_response(status: int, code: str, detail: str, challenge: str = "Bearer") -> JSONResponse:
    headers = {"WWW-Authenticate": challenge} if status == 401 else None  # RFC 6750
    # A detail may quote what the client sent, lone surrogates included, which UTF-8
    # cannot encode: escape them so naming the problem cannot itself fail with a 500.
    safe = detail.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse(
        status_code=status, content={"error": code, "detail": safe}, headers=headers
    )


def _describe(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{location}: {message}" if location else message


def install_error_handlers(app: FastAPI) -> None:
    """Register handlers so clients always get a JSON error that names the problem."""

    @app.exception_handler(TierrouteError)
    async def _tierroute_error(_: Request, exc: TierrouteError) -> JSONResponse:
        if exc.http_status >= 500:
            log.error("server error: %s", exc.detail)
        # An error may name its own auth challenge (the dashboard asks for Basic).
        challenge = getattr(exc, "challenge", "Bearer")
        return error_response(exc.http_status, exc.code, exc.detail, challenge)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(err.get("type") == "json_invalid" for err in errors):
            return error_response(400, "invalid_json", "request body is not valid JSON")
        detail = "; ".join(_describe(err) for err in errors)
        return error_response(422, "invalid_request", detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        code = codes.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))
