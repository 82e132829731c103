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


# The read views below document what tierroute/store/jobs.py `view_of` and `batch_view`
# build; timestamps stay ISO 8601 strings, as those views have always served them.


class RoutingView(BaseModel):
    """Which tier the classifier chose for a job, how sure it was, and what the budget did."""

    tier: str
    proposed_tier: str | None
    confidence: float
    score: float | None
    reasoning: str
    classifier: str
    version: str | None
    cost_ratio: float
    fallback_reason: str | None
    budget_action: str | None
    budget_reason: str | None


class JobView(BaseModel):
    """One job: status, routing, answer, tokens, dollars and timings (also a results line)."""

    id: str
    batch_id: str | None
    # A job status: queued, classifying, routed, running, succeeded, failed, cancelled or
    # dead (tierroute/domain/status.py).
    status: str
    tier: str | None
    model: str | None
    routing: RoutingView | None
    result: str | None
    stop_reason: str | None
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    batch_api: bool
    cost_usd: float
    classifier_cost_usd: float
    cost_if_opus_usd: float
    savings_usd: float
    latency_ms: int | None
    attempts: int
    error: str | None
    simulated: bool
    metadata: dict[str, Any] | None
    created_at: str
    classified_at: str | None
    started_at: str | None
    finished_at: str | None


class RequestCounts(BaseModel):
    """A Message Batch's requests by state, as Anthropic reports them."""

    processing: int
    succeeded: int
    errored: int
    canceled: int
    expired: int


class ProviderBatchView(BaseModel):
    """Anthropic's state of one Message Batch holding part of a batch_api batch."""

    id: str
    tier: str
    processing_status: str
    request_counts: RequestCounts
    requests: int
    results_processed: bool
    cancel_requested: bool
    created_at: str
    expires_at: str | None
    ended_at: str | None
    last_polled_at: str | None


class BatchView(BaseModel):
    """A batch's counts by status and tier, cost so far, and progress."""

    id: str
    count: int
    # Every job status, with zero for those no job is in.
    counts: dict[str, int]
    by_tier: dict[str, int]
    finished: int
    progress: float
    done: bool
    cost_usd: float
    cost_if_opus_usd: float
    created_at: str
    mode: str
    # Only in batch_api mode (the route leaves it out of a live batch's answer).
    provider_batches: list[ProviderBatchView] | None = None
