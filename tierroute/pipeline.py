"""The two steps of a job, as the Celery tasks run them: classify, then complete.

Each step claims the job with a conditional UPDATE that also takes a lease, so a
redelivered or duplicated message for a job that has moved on, or that another
worker holds, does nothing. Network calls happen outside transactions.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlalchemy.orm import Session

from tierroute.classifiers import RoutingDecision
from tierroute.db import session_scope
from tierroute.errors import PermanentProviderError, RetryableProviderError
from tierroute.models import Job, JobStatus, ModelCall
from tierroute.models import RoutingDecision as DecisionRow
from tierroute.provider import CallRecord, build_completion_params, call_model
from tierroute.runtime import Runtime

log = logging.getLogger(__name__)


def record_call(session: Session, record: CallRecord, job_id: uuid.UUID | None) -> None:
    """Store one billed call as a `model_calls` row."""
    session.add(
        ModelCall(
            job_id=job_id,
            purpose=record.purpose,
            model=record.model,
            tier=record.tier,
            input_tokens=record.tokens.input_tokens,
            output_tokens=record.tokens.output_tokens,
            cache_creation_input_tokens=record.tokens.cache_creation_input_tokens,
            cache_read_input_tokens=record.tokens.cache_read_tokens,
            cost_usd=record.cost_usd,
            cost_if_opus_usd=record.cost_if_opus_usd,
            latency_ms=record.latency_ms,
            request_id=record.request_id,
            stop_reason=record.stop_reason,
            simulated=record.simulated,
        )
    )


def decide(rt: Runtime, prompt: str, system: str | None, force_tier: str | None) -> RoutingDecision:
    """The routing decision for a prompt: a forced tier, or the classifier's proposal."""
    if force_tier is not None:
        return rt.policy.manual(rt.tiers.parse(force_tier))
    return rt.classifier.classify(prompt, system)


# A lease outlives the longest call a task can make (the SDK timeout), so it only
# expires when the task that took it is gone.
LEASE_MARGIN_S = 30.0


def _lease_until(seconds: float) -> Any:
    return func.now() + timedelta(seconds=seconds + LEASE_MARGIN_S)


def _lease_expired() -> Any:
    return or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < func.now())


def classify_job(rt: Runtime, job_id: uuid.UUID) -> str | None:
    """Route a queued job. Returns the tier whose queue should run it, or None to skip."""
    with session_scope() as session:
        claimed = session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                or_(
                    Job.status == JobStatus.QUEUED,
                    # A classifier that died mid-call left its lease to expire.
                    and_(Job.status == JobStatus.CLASSIFYING, Job.tier.is_(None), _lease_expired()),
                ),
            )
            .values(
                status=JobStatus.CLASSIFYING,
                lease_expires_at=_lease_until(rt.settings.classify_timeout_s),
                updated_at=func.now(),
            )
            .returning(Job.prompt, Job.system, Job.force_tier)
        ).first()
        if claimed is None:
            # A redelivered message can still hand a routed job on: the first
            # delivery may have died between commit and enqueue.
            return _routed_tier_awaiting_run(session, job_id)
    decision = decide(rt, claimed.prompt, claimed.system, claimed.force_tier)
    with session_scope() as session:
        if decision.call is not None:
            record_call(session, decision.call, job_id)  # billed, whatever happens next
        routed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.CLASSIFYING, Job.tier.is_(None))
            .values(
                tier=decision.tier,
                classified_at=func.now(),
                lease_expires_at=None,
                updated_at=func.now(),
            )
            .returning(Job.id)
        ).first()
        if routed is None:
            log.info("classify: job %s was cancelled or routed meanwhile", job_id)
            return None
        session.add(
            DecisionRow(
                job_id=job_id,
                tier=decision.tier,
                proposed_tier=decision.proposed_tier,
                confidence=decision.confidence,
                score=decision.score,
                reasoning=decision.reasoning,
                classifier=decision.classifier,
                cost_ratio=decision.cost_ratio,
                fallback_reason=decision.fallback_reason,
            )
        )
    log.info("job %s routed to %s (%s)", job_id, decision.tier, decision.classifier)
    return decision.tier


def _routed_tier_awaiting_run(session: Session, job_id: uuid.UUID) -> str | None:
    job = session.get(Job, job_id)
    if job is None:
        log.warning("classify: job %s does not exist; dropping the message", job_id)
        return None
    if job.status == JobStatus.CLASSIFYING and job.tier is not None:
        return job.tier  # a duplicate complete message is skipped by its lease
    log.info("classify: job %s is %s; nothing to do", job_id, job.status)
    return None


@dataclass(frozen=True)
class RetryLater:
    """The call failed transiently; run the task again after `delay_s`."""

    delay_s: float
    reason: str


def complete_job(rt: Runtime, job_id: uuid.UUID) -> RetryLater | None:
    """Answer a routed job on its tier. Returns RetryLater when the task should retry."""
    with session_scope() as session:
        claimed = session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.tier.is_not(None),
                or_(
                    Job.status == JobStatus.CLASSIFYING,
                    # A retry, or a worker that died mid-call and left its lease.
                    and_(Job.status == JobStatus.RUNNING, _lease_expired()),
                ),
            )
            .values(
                status=JobStatus.RUNNING,
                attempts=Job.attempts + 1,
                lease_expires_at=_lease_until(rt.settings.request_timeout_s),
                started_at=func.coalesce(Job.started_at, func.now()),
                updated_at=func.now(),
            )
            .returning(
                Job.prompt,
                Job.system,
                Job.max_tokens,
                Job.tier,
                Job.thinking_override,
                Job.attempts,
            )
        ).first()
    if claimed is None:
        log.info("complete: job %s is finished, cancelled or held by another worker", job_id)
        return None
    tier = rt.tiers.get(claimed.tier)
    params = build_completion_params(
        tier, claimed.prompt, claimed.system, claimed.max_tokens, claimed.thinking_override
    )
    try:
        result = call_model(
            rt.client, params, purpose="complete", tiers=rt.tiers, simulated=rt.settings.simulated
        )
    except RetryableProviderError as exc:
        return _after_transient_failure(rt, job_id, claimed.attempts, exc)
    except PermanentProviderError as exc:
        _finish(job_id, JobStatus.FAILED, error=exc.detail)
        return None
    with session_scope() as session:
        record_call(session, result.record, job_id)
        _set_finished(session, job_id, JobStatus.SUCCEEDED, result_text=result.text, error=None)
    return None


def _after_transient_failure(
    rt: Runtime, job_id: uuid.UUID, attempts: int, exc: RetryableProviderError
) -> RetryLater | None:
    settings = rt.settings
    if attempts >= settings.max_attempts:
        _finish(job_id, JobStatus.FAILED, error=f"gave up after {attempts} attempts: {exc.detail}")
        return None
    backoff = settings.retry_backoff_base_s * 2 ** (attempts - 1)
    # Never retry before the server's retry-after; never wait longer than the cap.
    delay = min(max(backoff, exc.retry_after_s or 0.0), settings.retry_backoff_max_s)
    reason = f"attempt {attempts} failed: {exc.detail}; retrying in {delay:.1f}s"
    with session_scope() as session:
        # Release the lease so the retry message can claim the job when it arrives.
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
            .values(error=reason, lease_expires_at=None, updated_at=func.now())
        )
    return RetryLater(delay_s=delay, reason=reason)


def _finish(job_id: uuid.UUID, status: JobStatus, *, error: str | None) -> None:
    with session_scope() as session:
        _set_finished(session, job_id, status, result_text=None, error=error)


def _set_finished(
    session: Session,
    job_id: uuid.UUID,
    status: JobStatus,
    *,
    result_text: str | None,
    error: str | None,
) -> None:
    values: dict[str, Any] = {
        "status": status,
        "error": error,
        "lease_expires_at": None,
        "finished_at": func.now(),
        "updated_at": func.now(),
    }
    if result_text is not None:
        values["result_text"] = result_text
    session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING).values(**values)
    )
