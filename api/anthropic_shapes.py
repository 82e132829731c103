"""Anthropic's response shapes built from tierroute's views: Message, errors, batch results."""

from __future__ import annotations

import re
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from tierroute.domain.errors import TierrouteError

# Our error classes by status, as Anthropic names them (its ErrorResponse types).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# A job's error that came from the model's API starts with its status.
_HTTP_STATUS = re.compile(r"HTTP (\d{3})\b")


def error_body(error_type: str, message: str) -> dict[str, Any]:
    """Anthropic's ErrorResponse."""
    safe = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return {"type": "error", "error": {"type": error_type, "message": safe}, "request_id": None}


def anthropic_error(
    status: int, message: str, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error response in Anthropic's shape; the status is never one the SDK retries."""
    # 422 and 409 are tierroute's; Anthropic answers a bad request with 400.
    status = 400 if status in (409, 422) else status
    error_type = ERROR_TYPES.get(status, "api_error")
    # The SDK retries 408, 409, 429 and 5xx unless told not to; a retried request
    # would be a second job.
    all_headers = {"x-should-retry": "false", **(headers or {})}
    return JSONResponse(error_body(error_type, message), status_code=status, headers=all_headers)


def from_tierroute_error(exc: TierrouteError) -> JSONResponse:
    """One of our errors, as Anthropic's SDK expects to read it."""
    return anthropic_error(exc.http_status, exc.detail)


def job_error(view: dict[str, Any]) -> tuple[int, str]:
    """The status and message of a job that did not succeed."""
    error = str(view.get("error") or view["status"])
    match = _HTTP_STATUS.search(error)
    if match and int(match.group(1)) < 500:
        return int(match.group(1)), error
    if view["status"] == "cancelled":
        return 409, f"the request was cancelled: {error}"
    return 500, error


def message(view: dict[str, Any], params: dict[str, Any] | None) -> dict[str, Any]:
    """A succeeded job's answer as Anthropic's Message."""
    content = (params or {}).get("response_content")
    if content is None:
        content = [{"type": "text", "text": view["result"] or "", "citations": None}]
    return {
        "id": f"msg_{view['id'].replace('-', '')}",
        "type": "message",
        "role": "assistant",
        "model": view["model"],
        "content": content,
        "stop_reason": view["stop_reason"] or "end_turn",
        "stop_sequence": None,
        "stop_details": None,
        "container": None,
        "usage": {
            "input_tokens": view["input_tokens"],
            "output_tokens": view["output_tokens"],
            "cache_creation_input_tokens": view["cache_creation_input_tokens"],
            "cache_read_input_tokens": view["cache_read_input_tokens"],
            "cache_creation": None,
            "inference_geo": None,
            "output_tokens_details": None,
            "server_tool_use": None,
            "service_tier": "batch" if view["batch_api"] else "standard",
        },
    }


def result_line(view: dict[str, Any], params: dict[str, Any] | None) -> dict[str, Any]:
    """One line of a Message Batch's results, keyed by the request's custom_id."""
    custom_id = (params or {}).get("custom_id") or view["id"]
    status = view["status"]
    if status == "succeeded":
        result: dict[str, Any] = {"type": "succeeded", "message": message(view, params)}
    elif status == "cancelled":
        result = {"type": "canceled"}
    else:
        code, text = job_error(view)
        result = {"type": "errored", "error": error_body(ERROR_TYPES.get(code, "api_error"), text)}
    return {"custom_id": custom_id, "result": result}


def tierroute_headers(view: dict[str, Any]) -> dict[str, str]:
    """Which tier and model answered, the job to look up, and what it cost."""
    return {
        "x-tierroute-job-id": view["id"],
        "x-tierroute-tier": view["tier"] or "",
        "x-tierroute-model": view["model"] or "",
        "x-tierroute-cost-usd": f"{view['cost_usd']:.6f}",
        # The SDK keeps this as the response's `_request_id`.
        "request-id": view["id"],
    }


class AnthropicErrorDetail(BaseModel):
    """What went wrong: Anthropic's error type and a message naming the parameter."""

    type: str
    message: str


class AnthropicError(BaseModel):
    """Anthropic's ErrorResponse, as every /v1/messages route answers an error."""

    type: str = "error"
    error: AnthropicErrorDetail
    request_id: str | None = None


class MessageOut(BaseModel):
    """Anthropic's Message (the spec: shared/data/anthropic-openapi.json)."""

    id: str
    type: str
    role: str
    model: str
    content: list[dict[str, Any]]
    stop_reason: str | None
    stop_sequence: str | None
    stop_details: dict[str, Any] | None
    container: dict[str, Any] | None
    usage: dict[str, Any]


class MessageBatchOut(BaseModel):
    """Anthropic's MessageBatch."""

    id: str
    type: str
    processing_status: str
    request_counts: dict[str, int]
    created_at: str
    expires_at: str
    ended_at: str | None
    cancel_initiated_at: str | None
    archived_at: str | None
    results_url: str | None


class MessageBatchList(BaseModel):
    """A page of Message Batches."""

    data: list[MessageBatchOut]
    has_more: bool
    first_id: str | None
    last_id: str | None


_ANTHROPIC_MEANING = {
    400: "a parameter is invalid or not supported; the message names it",
    401: "missing, unknown or revoked API key",
    404: "no such batch among the caller's",
    413: "body too large",
    500: "the job failed (its error is the message)",
    504: "the job did not finish within the wait; the message and x-tierroute-job-id name it",
}


def anthropic_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for errors in Anthropic's shape."""
    return {s: {"model": AnthropicError, "description": _ANTHROPIC_MEANING[s]} for s in statuses}
