"""SQLAlchemy 2 models: the tables that hold every job, decision, call and rating."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tierroute.domain.ids import uuid7
from tierroute.domain.status import BatchMode, JobStatus

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

USD = Numeric(18, 10)


def status_list(statuses: Iterable[JobStatus]) -> str:
    """Statuses as the inside of an SQL `IN (...)`: `'queued', 'routed'`."""
    return ", ".join(f"'{status}'" for status in statuses)


# Every status of the state machine, for the check constraint on jobs.status.
STATUS_LIST = status_list(JobStatus)


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations name constraints stably."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _utc_now_column(**kwargs: Any) -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), **kwargs)


class ApiKey(Base):
    """A client credential; only its SHA-256 hash is stored."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _utc_now_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The most this key may spend per UTC day; None leaves only the global budget.
    daily_budget_usd: Mapped[Decimal | None] = mapped_column(USD)


class Batch(Base):
    """A set of jobs submitted together."""

    __tablename__ = "batches"
    __table_args__ = (
        # The newest batches, all keys' or one key's: the dashboard (migration 0018).
        Index("ix_batches_created_at", "created_at"),
        Index("ix_batches_api_key_id_created_at", "api_key_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid7)
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id"))
    job_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = _utc_now_column()
    mode: Mapped[str] = mapped_column(String(20), default=BatchMode.LIVE, server_default="live")


class Job(Base):
    """One prompt and everything that happened to it."""

    __tablename__ = "jobs"
    __table_args__ = (
        # A batch's counts by status and by tier, both index-only (migration 0014).
        Index("ix_jobs_batch_id_status_tier", "batch_id", "status", "tier"),
        # Per-key and per-time reads (migration 0007): the report and dashboard by
        # key, reads by age, and the result stream's keyset order within a batch.
        Index("ix_jobs_api_key_id_created_at", "api_key_id", "created_at"),
        Index("ix_jobs_created_at", "created_at"),
        Index("ix_jobs_batch_id_created_at_id", "batch_id", "created_at", "id"),
        # The earlier turns of a sticky conversation, for routing a follow-up.
        Index(
            "ix_jobs_conversation",
            "api_key_id",
            text("(request_params->>'conversation')"),
            postgresql_where=text("request_params ? 'conversation'"),
        ),
        Index(
            "ix_jobs_created_at_unsent",
            "created_at",
            postgresql_where="status = 'queued' AND enqueued_at IS NULL",
        ),
        Index(
            "uq_jobs_api_key_id_idempotency_key",
            "api_key_id",
            "idempotency_key",
            unique=True,
            postgresql_nulls_not_distinct=True,
            postgresql_where="idempotency_key IS NOT NULL",
        ),
        CheckConstraint("max_tokens > 0", name="max_tokens_positive"),
        # Only the state machine's statuses (migration 0008).
        CheckConstraint(f"status IN ({STATUS_LIST})", name="status_known"),
        # The batch poller's scan: batch-mode jobs not yet handed to a Message Batch.
        Index(
            "ix_jobs_batch_api_waiting",
            "batch_id",
            postgresql_where="batch_api AND status IN ('queued', 'classifying', 'routed')",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid7)
    batch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.QUEUED, index=True)
    prompt: Mapped[str] = mapped_column(Text)
    system: Mapped[str | None] = mapped_column(Text)
    max_tokens: Mapped[int] = mapped_column(Integer)
    force_tier: Mapped[str | None] = mapped_column(String(20))
    # Per-request override of the tier's thinking, e.g. {"thinking": "none", "effort": "low"}.
    thinking_override: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    tier: Mapped[str | None] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    result_text: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _utc_now_column()
    # Set when the classify message was sent; the feeder sends rows without it.
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A task holds the job until then; a duplicate delivery skips a leased job.
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    classified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = _utc_now_column(onupdate=func.now())
    # Answered through a Message Batch (its batch's mode), not by the complete task;
    # cleared when a failed batch request is re-run live.
    batch_api: Mapped[bool] = mapped_column(default=False, server_default="false")
    # The Message Batch that holds (or last held) the job.
    provider_batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("provider_batches.id", ondelete="SET NULL")
    )
    # The most the job can still bill, held against its daily budgets while in flight.
    reserved_usd: Mapped[Decimal | None] = mapped_column(USD)
    # Anthropic Messages parameters beyond prompt and system (turns, sampling, tools,
    # structured output, custom_id, conversation), and the rules that adapted them
    # to the routed model (tierroute/domain/anthropic_request.py).
    request_params: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    routing: Mapped[RoutingDecision | None] = relationship(back_populates="job", uselist=False)
    calls: Mapped[list[ModelCall]] = relationship(back_populates="job", order_by="ModelCall.id")


class RoutingDecision(Base):
    """Which tier a job was given, by which classifier, and why."""

    __tablename__ = "routing_decisions"

    # Partitioned by month over created_at (migration 0017): the key in the database is
    # (id, created_at), and job_id is indexed, not unique; the routing claim stores one
    # decision per job (a job is routed only from tier NULL, with its decision).
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    tier: Mapped[str] = mapped_column(String(20))
    # The tier the classifier proposed, before the confidence threshold applied.
    proposed_tier: Mapped[str | None] = mapped_column(String(20))
    confidence: Mapped[float] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)
    reasoning: Mapped[str] = mapped_column(Text)
    classifier: Mapped[str] = mapped_column(String(40))
    classifier_version: Mapped[str | None] = mapped_column(String(60))
    cost_ratio: Mapped[float] = mapped_column(Float)
    fallback_reason: Mapped[str | None] = mapped_column(Text)
    # What the daily budget check did: 'downgraded', 'rejected', or None when it fit.
    budget_action: Mapped[str | None] = mapped_column(String(20))
    budget_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _utc_now_column()

    job: Mapped[Job] = relationship(back_populates="routing")


class ModelCall(Base):
    """One billed API call, the classifier's own included.

    Partitioned by month over created_at (migration 0017): the key in the database
    is (id, created_at); ids still come from one sequence.
    """

    __tablename__ = "model_calls"
    __table_args__ = (Index("ix_model_calls_created_at_tier", "created_at", "tier"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(20))
    model: Mapped[str] = mapped_column(String(100))
    tier: Mapped[str] = mapped_column(String(20))
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    cache_creation_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(USD)
    # What this call would have cost without routing: the same usage on the top
    # tier for a completion, zero for a classifier call (no router, no call).
    cost_if_opus_usd: Mapped[Decimal] = mapped_column(USD)
    latency_ms: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(200))
    stop_reason: Mapped[str | None] = mapped_column(String(40))
    simulated: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = _utc_now_column()
    # Answered in a Message Batch: cost_usd and cost_if_opus_usd are at the 50 % batch rate.
    batch_api: Mapped[bool] = mapped_column(default=False, server_default="false")
    # What prompt caching saved on this call: cache reads priced at the input rate
    # minus what they cost, minus the premium paid for cache writes (may be negative).
    cache_savings_usd: Mapped[Decimal] = mapped_column(USD, default=0, server_default="0")
    # The key billed for a call without a job (a /v1/route classifier call).
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE")
    )

    job: Mapped[Job | None] = relationship(back_populates="calls")


class ProviderBatch(Base):
    """One Anthropic Message Batch: part of a tierroute batch's jobs on one tier."""

    __tablename__ = "provider_batches"
    __table_args__ = (
        Index(
            "ix_provider_batches_unprocessed",
            "id",
            postgresql_where="results_processed_at IS NULL",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    batch_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), index=True
    )
    tier: Mapped[str] = mapped_column(String(20))
    # What its requests are: the jobs' answers (complete), or shadow judging's calls
    # (shadow, judge), whose results go to shadow_verdicts, not to the jobs.
    purpose: Mapped[str] = mapped_column(String(20), default="complete", server_default="complete")
    anthropic_batch_id: Mapped[str] = mapped_column(String(200), unique=True)
    # Anthropic's processing_status: in_progress, canceling, ended.
    processing_status: Mapped[str] = mapped_column(String(20))
    request_count: Mapped[int] = mapped_column(Integer)
    processing: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    errored: Mapped[int] = mapped_column(Integer, default=0)
    canceled: Mapped[int] = mapped_column(Integer, default=0)
    expired: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _utc_now_column()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_polled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set by a tierroute cancel; the poller then cancels the Message Batch.
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Every result has been mapped back to its job.
    results_processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Rating(Base):
    """A person's satisfaction with a job's answer, in [0, 1]."""

    __tablename__ = "ratings"
    __table_args__ = (
        CheckConstraint("satisfaction >= 0 AND satisfaction <= 1", name="satisfaction_range"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    satisfaction: Mapped[float] = mapped_column(Float)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _utc_now_column()


class ShadowVerdict(Base):
    """A judge's verdict on a shadow-judged job: is the cheaper tier's answer as good?

    Pending (as_good NULL) while its calls are in flight: `reserved_usd` is then their
    worst case, counted against the learning-cost cap until they are billed.
    """

    __tablename__ = "shadow_verdicts"
    __table_args__ = (
        Index(
            "ix_shadow_verdicts_batch_waiting",
            "batch_stage",
            postgresql_where="batch_stage IS NOT NULL AND provider_batch_id IS NULL"
            " AND as_good IS NULL",
        ),
    )

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    cheaper_tier: Mapped[str] = mapped_column(String(20))
    dearer_tier: Mapped[str] = mapped_column(String(20))
    judge_model: Mapped[str] = mapped_column(String(100))
    as_good: Mapped[bool | None] = mapped_column()
    reasoning: Mapped[str | None] = mapped_column(Text)
    reserved_usd: Mapped[Decimal | None] = mapped_column(USD)
    created_at: Mapped[datetime] = _utc_now_column()
    judged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Judged through Message Batches (a batch_api job): the request it waits for,
    # 'shadow' then 'judge'; NULL for a live judgement.
    batch_stage: Mapped[str | None] = mapped_column(String(10))
    # The Message Batch holding that request; NULL until it is submitted.
    provider_batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("provider_batches.id", ondelete="SET NULL")
    )
    # The shadow answer, kept between the shadow's Message Batch and the judge's.
    shadow_text: Mapped[str | None] = mapped_column(Text)
    # The budget hold covering the pending calls, released with the verdict.
    budget_hold_id: Mapped[int | None] = mapped_column(BigInteger)
    # When a create that went unanswered was sent: the next try looks for that batch first.
    create_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
