"""Request and response bodies that only the HTTP API has (jobs reuse tierroute.specs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
    cost_ratio: float
    fallback_reason: str | None
    simulated: bool


class Health(BaseModel):
    status: str
    database: str
    broker: str
    simulated: bool
    details: dict[str, Any] = {}
