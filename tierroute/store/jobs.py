"""Use cases for jobs, batches and ratings. Services flush; the caller commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import any_, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tierroute.domain.budget import BudgetAction
from tierroute.domain.errors import Conflict, NotFound
from tierroute.domain.ids import uuid7
from tierroute.domain.specs import JobSpec
from tierroute.domain.status import CallPurpose, JobStatus
from tierroute.store import transitions
from tierroute.store.models import Batch, Job, Rating, RoutingDecision
from tierroute.store.rollups import batch_cost, fold


def _job_row(
    spec: JobSpec, default_max_tokens: int, batch_id: uuid.UUID | None, api_key_id: uuid.UUID | None
) -> dict[str, Any]:
    stored = spec.stored()
    return {
        "id": uuid7(),
        "batch_id": batch_id,
        "api_key_id": api_key_id,
        "status": JobStatus.QUEUED,
        "prompt": stored.prompt,
        "system": stored.system,
        "max_tokens": spec.max_tokens or default_max_tokens,
        "force_tier": spec.force_tier,
        "thinking_override": stored.thinking_override,
        "metadata_": spec.metadata,
        "request_params": stored.request_params,
    }


def create_job(
    session: Session,
    spec: JobSpec,
    *,
    default_max_tokens: int,
    api_key_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
) -> tuple[Job, bool]:
    """Insert one queued job; with an idempotency key, return the earlier job instead."""
    if idempotency_key is not None:
        existing = _job_by_idempotency_key(session, api_key_id, idempotency_key)
        if existing is not None:
            return existing, False
    job = Job(**_job_row(spec, default_max_tokens, None, api_key_id))
    job.idempotency_key = idempotency_key
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        # A concurrent request with the same key won the race; theirs is the job.
        earlier = _job_by_idempotency_key(session, api_key_id, idempotency_key or "")
        if earlier is None:
            raise
        return earlier, False
    return job, True


# Ownership: `api_key_id=None` means any owner (workers, tests, the CLI on the
# database); the API always passes the caller's key. Another key's row answers
# exactly like a missing one, so ids cannot be probed.
def _owned_by(owner: uuid.UUID | None, api_key_id: uuid.UUID | None) -> bool:
    return api_key_id is None or owner == api_key_id


def _get_batch(session: Session, batch_id: uuid.UUID, api_key_id: uuid.UUID | None) -> Batch:
    batch = session.get(Batch, batch_id)
    if batch is None or not _owned_by(batch.api_key_id, api_key_id):
        raise NotFound(f"batch {batch_id} not found")
    return batch


def _get_plain_job(session: Session, job_id: uuid.UUID, api_key_id: uuid.UUID | None) -> Job:
    job = session.get(Job, job_id)
    if job is None or not _owned_by(job.api_key_id, api_key_id):
        raise NotFound(f"job {job_id} not found")
    return job


def claim_for_enqueue(session: Session, job_id: uuid.UUID) -> bool:
    """Stamp a queued job as sent, unless the feeder already took it."""
    stamped = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED, Job.enqueued_at.is_(None))
        .values(enqueued_at=func.now())
        .returning(Job.id)
    ).first()
    return stamped is not None


def cancel_batch(
    session: Session, batch_id: uuid.UUID, *, api_key_id: uuid.UUID | None = None
) -> int:
    """Cancel a batch's jobs that have not started running; returns how many."""
    _get_batch(session, batch_id, api_key_id)
    return transitions.cancel_not_started(session, batch_id)


def _redrive(session: Session, *conditions: Any) -> list[uuid.UUID]:
    ids = transitions.redrive(session, *conditions)
    _forget_budget_rejections(session, ids)
    return ids


def id_array(job_ids: Sequence[uuid.UUID]) -> Any:
    """Job ids as ONE uuid[] parameter, for `column == any_(id_array(ids))`.

    `.in_(ids)` binds a parameter per id, and Postgres takes at most 65,535 in a
    statement: a bulk operation on a large batch failed outright.
    """
    return bindparam("job_ids", list(job_ids), type_=ARRAY(UUID(as_uuid=True)))


def _forget_budget_rejections(session: Session, job_ids: list[uuid.UUID]) -> None:
    # A job the budget rejected is routed afresh, so today's budget is checked again.
    rejected = (
        select(RoutingDecision.job_id)
        .where(RoutingDecision.job_id == any_(id_array(job_ids)))
        .where(RoutingDecision.budget_action == BudgetAction.REJECTED)
    )
    session.execute(update(Job).where(Job.id.in_(rejected)).values(tier=None, classified_at=None))
    session.execute(
        delete(RoutingDecision)
        .where(RoutingDecision.job_id == any_(id_array(job_ids)))
        .where(RoutingDecision.budget_action == BudgetAction.REJECTED)
    )


def retry_job(session: Session, job_id: uuid.UUID, *, api_key_id: uuid.UUID | None = None) -> None:
    """Re-queue one failed or dead job; Conflict if it is in any other state."""
    job = _get_plain_job(session, job_id, api_key_id)
    if not _redrive(session, Job.id == job_id):
        raise Conflict(f"job {job_id} is {job.status}; only failed or dead jobs can be retried")


def redrive_batch(
    session: Session, batch_id: uuid.UUID, *, api_key_id: uuid.UUID | None = None
) -> int:
    """Re-queue every failed or dead job of a batch; returns how many."""
    _get_batch(session, batch_id, api_key_id)
    return len(_redrive(session, Job.batch_id == batch_id))


def _job_by_idempotency_key(session: Session, api_key_id: uuid.UUID | None, key: str) -> Job | None:
    query = select(Job).where(Job.idempotency_key == key)
    query = query.where(
        Job.api_key_id.is_(None) if api_key_id is None else Job.api_key_id == api_key_id
    )
    return session.scalars(query).first()


def view_of(job: Any, routing: Any, calls: Sequence[Any]) -> dict[str, Any]:
    """The public picture of a job: status, routing, answer, tokens and dollars.

    From anything with the columns' names: the API's GET reads plain rows
    (tierroute/store/job_reads.py); `calls` in id order.
    """
    completions = [c for c in calls if c.purpose == CallPurpose.COMPLETE]
    classifier_cost = sum(
        (c.cost_usd for c in calls if c.purpose == CallPurpose.CLASSIFY), Decimal(0)
    )
    completion_cost = sum((c.cost_usd for c in completions), Decimal(0))
    cost = classifier_cost + completion_cost
    cost_if_opus = sum((c.cost_if_opus_usd for c in calls), Decimal(0))
    last = completions[-1] if completions else None
    return {
        "id": str(job.id),
        "batch_id": str(job.batch_id) if job.batch_id else None,
        "status": job.status,
        "tier": job.tier,
        "model": last.model if last else None,
        "routing": None
        if routing is None
        else {
            "tier": routing.tier,
            "proposed_tier": routing.proposed_tier,
            "confidence": routing.confidence,
            "score": routing.score,
            "reasoning": routing.reasoning,
            "classifier": routing.classifier,
            "version": routing.classifier_version,
            "cost_ratio": routing.cost_ratio,
            "fallback_reason": routing.fallback_reason,
            "budget_action": routing.budget_action,
            "budget_reason": routing.budget_reason,
        },
        "result": job.result_text,
        "stop_reason": last.stop_reason if last else None,
        "input_tokens": sum(c.input_tokens for c in completions),
        "output_tokens": sum(c.output_tokens for c in completions),
        "cache_creation_input_tokens": sum(c.cache_creation_input_tokens for c in completions),
        "cache_read_input_tokens": sum(c.cache_read_input_tokens for c in completions),
        # Answered in a Message Batch, billed at the 50 % batch rate.
        "batch_api": any(c.batch_api for c in completions),
        "cost_usd": float(cost),
        "classifier_cost_usd": float(classifier_cost),
        "cost_if_opus_usd": float(cost_if_opus),
        "savings_usd": float(cost_if_opus - cost),
        "latency_ms": last.latency_ms if last else None,
        "attempts": job.attempts,
        "error": job.error,
        "simulated": any(c.simulated for c in calls),
        "metadata": job.metadata_,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "classified_at": job.classified_at.isoformat() if job.classified_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def rate_job(
    session: Session,
    job_id: uuid.UUID,
    satisfaction: float,
    comment: str | None = None,
    *,
    api_key_id: uuid.UUID | None = None,
) -> Rating:
    """Record a person's satisfaction with a finished job's answer."""
    job = _get_plain_job(session, job_id, api_key_id)
    if job.status != JobStatus.SUCCEEDED:
        raise Conflict(f"job {job_id} is {job.status}; only succeeded jobs can be rated")
    rating = Rating(job_id=job_id, satisfaction=satisfaction, comment=comment)
    session.add(rating)
    session.flush()
    return rating


def batch_view(
    session: Session, batch_id: uuid.UUID, *, api_key_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """Counts by status, cost so far and progress of a batch."""
    batch = _get_batch(session, batch_id, api_key_id)
    counts = dict(
        session.execute(
            select(Job.status, func.count()).where(Job.batch_id == batch_id).group_by(Job.status)
        ).all()
    )
    by_tier = dict(
        session.execute(
            select(Job.tier, func.count())
            .where(Job.batch_id == batch_id, Job.tier.is_not(None))
            .group_by(Job.tier)
        ).all()
    )
    # From the batch's rollup rows, folded first (tierroute/store/rollups.py).
    fold(session)
    cost, cost_if_opus = batch_cost(session, batch_id)
    finished = sum(counts.get(s, 0) for s in JobStatus if s.finished)
    return {
        "id": str(batch.id),
        "count": batch.job_count,
        "counts": {status.value: counts.get(status, 0) for status in JobStatus},
        "by_tier": by_tier,
        "finished": finished,
        "progress": finished / batch.job_count if batch.job_count else 1.0,
        "done": finished == batch.job_count,
        "cost_usd": float(cost),
        "cost_if_opus_usd": float(cost_if_opus),
        "created_at": batch.created_at.isoformat(),
        "mode": batch.mode,
    }
