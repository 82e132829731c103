"""Request and response bodies that only the HTTP API has (jobs reuse tierroute.domain.specs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tierroute.domain.storable import check_text


class ErrorBody(BaseModel):
    """Every error: a short code and a detail that names the field or line at fault."""

    error: str
    detail: str


_ERROR_MEANING = {
    400: "body is not valid JSON, or a header is wrong",
    401: "missing, malformed, unknown or revoked API key",
    402: "the caller's daily budget (or the global one) has no room for the call",
    404: "no such id among the caller's",
    409: "the resource is in the wrong state for this",
    413: "body too large",
    422: "a field or line is invalid; the detail names it",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for our JSON errors, so /openapi.json documents them."""
    return {s: {"model": ErrorBody, "description": _ERROR_MEANING[s]} for s in statuses}


class JobAccepted(BaseModel):
    id: str
    status: str


class BatchAccepted(BaseModel):
    id: str
    count: int


class BatchCancelled(BaseModel):
    id: str
    cancelled: int


class BatchRedriven(BaseModel):
    id: str
    requeued: int


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    satisfaction: float = Field(ge=0.0, le=1.0)
    comment: str | None = Field(default=None, max_length=10_000)

    @field_validator("comment")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        return check_text(value)


class RatingOut(BaseModel):
    id: int
    job_id: str
    satisfaction: float


class RouteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    system: str | None = None
    force_tier: int | str | None = None


class RouteOut(BaseModel):
    tier: str
    model: str
    confidence: float
    score: float | None
    reasoning: str
    classifier: str
    # Which trained artifact (or prompt revision) of the classifier decided.
    version: str | None = None
    cost_ratio: float
    fallback_reason: str | None
    simulated: bool


class Health(BaseModel):
    status: str
    database: str
    broker: str
    simulated: bool
    details: dict[str, Any] = {}
