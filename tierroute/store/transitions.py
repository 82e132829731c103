"""Every change of a job's status, and nothing else changes one (tierroute/domain/status.py).

Each statement is a `Move` that names the statuses it takes jobs from and to, checked
against the state machine when this module is imported; a unit test checks that the
SQL itself says the same (tests/unit/test_job_status.py). Every claim is a
conditional UPDATE on the job's current status, so a duplicate message does nothing.

Plain SQL on a psycopg cursor for the pipeline's steps, which run several times per
job (the ORM's per-statement work was half of a worker's CPU); the ORM for the rare
bulk moves made in a request's session (cancel, retry, redrive).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tierroute.domain.decisions import CallRecord, RoutingDecision
from tierroute.domain.status import NOT_STARTED, REDRIVABLE, JobStatus, check_moves
from tierroute.store.engine import Cursor, fetch_one_as
from tierroute.store.leases import INSERT_CALL, LEASE_EXPIRED, call_params
from tierroute.store.models import Job

_S = JobStatus


@dataclass(frozen=True)
class Move:
    """A statement that changes `jobs.status`: from which statuses, to which."""

    sources: tuple[JobStatus, ...]
    targets: tuple[JobStatus, ...]
    # None for a move built with the ORM from `sources` and `targets` themselves.
    sql: str | None = None

    def __post_init__(self) -> None:
        check_moves(self.sources, self.targets)

    @property
    def target(self) -> JobStatus:
        """The one status this move leads to."""
        (target,) = self.targets
        return target

    @property
    def statement(self) -> str:
        """The SQL a pipeline step runs on a raw cursor."""
        if self.sql is None:
            raise TypeError(f"the move to {', '.join(self.targets)} is made with the ORM")
        return self.sql

    def check_target(self, status: JobStatus | str) -> str:
        """A status passed as a parameter, refused unless this move may lead to it."""
        if JobStatus(status) not in self.targets:
            raise ValueError(f"this move leads to {', '.join(self.targets)}, not {status}")
        return str(status)

    def check_source(self, status: JobStatus | str) -> str:
        """A status matched as a parameter, refused unless this move may start from it."""
        if JobStatus(status) not in self.sources:
            raise ValueError(f"this move starts from {', '.join(self.sources)}, not {status}")
        return str(status)


@dataclass(frozen=True)
class ClassifyClaim:
    """A job claimed for classifying (CLAIM_FOR_CLASSIFY's columns)."""

    prompt: str
    system: str | None
    force_tier: str | None
    tier: str | None  # already routed: a re-driven job keeps its routing
    batch_api: bool


@dataclass(frozen=True)
class CompleteClaim:
    """A job claimed for its model call (CLAIM_FOR_COMPLETE's columns)."""

    prompt: str
    system: str | None
    max_tokens: int
    tier: str
    thinking_override: dict[str, Any] | None
    attempts: int
    api_key_id: uuid.UUID | None


# --- classify ---------------------------------------------------------------

CLAIM_FOR_CLASSIFY = Move(
    (_S.QUEUED, _S.CLASSIFYING),
    (_S.CLASSIFYING,),
    f"""
    UPDATE jobs SET status = 'classifying', updated_at = now(),
                    lease_expires_at = now() + make_interval(secs => %(lease_s)s)
     WHERE id = %(id)s
       AND (status = 'queued'
            -- a classifier that died mid-call (or mid-claim) left its lease to expire
            OR (status = 'classifying' AND {LEASE_EXPIRED}))
    RETURNING prompt, system, force_tier, tier, batch_api
""",
)

# A re-driven job keeps the routing it already has: no second classifier call.
KEEP_ROUTE = Move(
    (_S.CLASSIFYING,),
    (_S.ROUTED,),
    """
    UPDATE jobs SET status = 'routed', classified_at = coalesce(classified_at, now()),
                    lease_expires_at = NULL, updated_at = now()
     WHERE id = %(id)s AND status = 'classifying'
""",
)

ROUTE = Move(
    (_S.CLASSIFYING,),
    (_S.ROUTED,),
    """
    UPDATE jobs SET status = 'routed', tier = %(tier)s, classified_at = now(),
                    lease_expires_at = NULL, updated_at = now()
     WHERE id = %(id)s AND status = 'classifying' AND tier IS NULL
    RETURNING id
""",
)

INSERT_DECISION = """
    INSERT INTO routing_decisions (job_id, tier, proposed_tier, confidence, score, reasoning,
                                   classifier, classifier_version, cost_ratio, fallback_reason)
    VALUES (%(id)s, %(tier)s, %(proposed_tier)s, %(confidence)s, %(score)s, %(reasoning)s,
            %(classifier)s, %(classifier_version)s, %(cost_ratio)s, %(fallback_reason)s)
"""

# Routes many queued jobs and stores their decisions in one statement. The
# conditional UPDATE is the claim: a job cancelled, or routed by a duplicate
# message, since it was read is left alone and gets no decision row.
ROUTE_QUEUED = Move(
    (_S.QUEUED,),
    (_S.ROUTED,),
    """
    WITH decided AS (
        SELECT * FROM unnest(%(ids)s::uuid[], %(tiers)s::text[], %(proposed)s::text[],
                             %(confidence)s::float8[], %(score)s::float8[],
                             %(reasoning)s::text[], %(classifier)s::text[],
                             %(version)s::text[], %(cost_ratio)s::float8[],
                             %(fallback)s::text[])
            AS d(job_id, tier, proposed_tier, confidence, score, reasoning, classifier,
                 classifier_version, cost_ratio, fallback_reason)
    ), locked AS MATERIALIZED (
        -- Locked in id order before the UPDATE, as a batch's cancel locks its rows
        -- (`cancel_not_started`): locked in plan order, a chunk and a cancel each
        -- held rows the other waited for, and Postgres killed one (issue 16).
        SELECT id FROM jobs
         WHERE id = ANY(%(ids)s::uuid[]) AND (status = 'queued') IS TRUE AND tier IS NULL
         ORDER BY id
           FOR UPDATE
    ), routed AS (
        UPDATE jobs SET status = 'routed', tier = decided.tier, classified_at = now(),
                        lease_expires_at = NULL, updated_at = now()
          FROM decided
         -- The chunk's rows are found by primary key (`= ANY`), and the status test
         -- is written so that no index serves it (IS TRUE): otherwise, on a freshly
         -- copied batch without statistics, and in the generic plan psycopg's
         -- prepared statement settles on, Postgres scanned every queued job for
         -- each chunk instead of reading the chunk's rows by key.
         WHERE jobs.id = ANY(%(ids)s::uuid[]) AND jobs.id = decided.job_id
           AND jobs.id IN (SELECT id FROM locked)
           AND (jobs.status = 'queued') IS TRUE AND jobs.tier IS NULL
        RETURNING jobs.id
    )
    INSERT INTO routing_decisions (job_id, tier, proposed_tier, confidence, score, reasoning,
                                   classifier, classifier_version, cost_ratio, fallback_reason)
    SELECT d.job_id, d.tier, d.proposed_tier, d.confidence, d.score, d.reasoning,
           d.classifier, d.classifier_version, d.cost_ratio, d.fallback_reason
      FROM decided d JOIN routed ON routed.id = d.job_id
    RETURNING job_id
""",
)

# No daily budget has room for the job: before its classifier call, or once routed.
REJECT_FOR_BUDGET = Move(
    (_S.CLASSIFYING, _S.ROUTED),
    (_S.FAILED,),
    """
    UPDATE jobs SET status = 'failed', error = %(error)s, lease_expires_at = NULL,
                    reserved_usd = NULL, finished_at = now(), updated_at = now()
     WHERE id = %(id)s AND status IN ('classifying', 'routed')
""",
)

# --- complete ---------------------------------------------------------------

# The claim commits on its own (autocommit) without waiting for the WAL to reach
# disk: set_config(..., true) lasts until the end of the statement's own
# transaction, its commit included, and the connection keeps its setting. With
# hundreds of calls in flight, a flush per claim kept Postgres backends queued on
# the WAL write lock. A claim lost in a Postgres crash costs at most a repeated
# call, as a worker dying mid-call does; the job's result commit is durable and
# flushes the WAL up to itself, this claim included.
CLAIM_FOR_COMPLETE = Move(
    (_S.ROUTED, _S.RUNNING),
    (_S.RUNNING,),
    f"""
    UPDATE jobs SET status = 'running', attempts = attempts + 1, updated_at = now(),
                    started_at = coalesce(started_at, now()),
                    lease_expires_at = now() + make_interval(secs => %(lease_s)s)
      FROM (SELECT set_config('synchronous_commit', 'off', true)) AS no_wal_wait
     WHERE id = %(id)s AND tier IS NOT NULL
       AND NOT batch_api  -- a batch-mode job is answered by its Message Batch
       AND (status = 'routed'
            -- a retry, or a worker that died mid-call and left its lease
            OR (status = 'running' AND {LEASE_EXPIRED}))
    RETURNING prompt, system, max_tokens, tier, thinking_override, attempts, api_key_id
""",
)

FINISH = Move(
    (_S.RUNNING,),
    (_S.SUCCEEDED, _S.FAILED, _S.DEAD),
    """
    UPDATE jobs SET status = %(status)s, error = %(error)s,
                    result_text = coalesce(%(result_text)s, result_text),
                    lease_expires_at = NULL, finished_at = now(), updated_at = now()
     WHERE id = %(id)s AND status = 'running'
""",
)

# The answer and its bill in one statement, so the step needs no transaction: a
# data-modifying CTE runs whether or not the outer statement reads it.
SUCCEED_WITH_CALL = Move(
    (_S.RUNNING,),
    (_S.SUCCEEDED,),
    f"""
    WITH billed AS ({INSERT_CALL})
    UPDATE jobs SET status = 'succeeded', error = NULL, result_text = %(result_text)s,
                    lease_expires_at = NULL, finished_at = now(), updated_at = now()
     WHERE id = %(job_id)s AND status = 'running'
""",
)

# A call made and billed whose answer Postgres refuses (a NUL character in it): the
# bill is kept and the job fails with the reason, in one statement, so it is neither
# billed twice nor sent again.
FAIL_WITH_CALL = Move(
    (_S.RUNNING,),
    (_S.FAILED,),
    f"""
    WITH billed AS ({INSERT_CALL})
    UPDATE jobs SET status = 'failed', error = %(error)s,
                    lease_expires_at = NULL, finished_at = now(), updated_at = now()
     WHERE id = %(job_id)s AND status = 'running'
""",
)

# --- Message Batches (tierroute/pipeline/message_batches) -------------------

# The batch's try is an attempt; a job in a Message Batch holds no lease (the complete
# task's claim skips batch-mode jobs).
HAND_TO_MESSAGE_BATCH = Move(
    (_S.ROUTED,),
    (_S.RUNNING,),
    """
    UPDATE jobs SET status = 'running', provider_batch_id = %(provider_batch_id)s,
                    attempts = attempts + 1, started_at = coalesce(started_at, now()),
                    lease_expires_at = NULL, error = NULL, updated_at = now()
     WHERE id = ANY(%(ids)s) AND status = 'routed' AND batch_api
""",
)

BATCH_SUCCEEDED = Move(
    (_S.RUNNING,),
    (_S.SUCCEEDED,),
    """
    UPDATE jobs SET status = 'succeeded', result_text = %(text)s, error = NULL,
                    finished_at = now(), updated_at = now()
     WHERE id = %(id)s AND status = 'running' AND provider_batch_id = %(provider_batch_id)s
    RETURNING id
""",
)

# A succeeded request whose answer Postgres refuses: billed, so failed, not re-run.
BATCH_FAILED_UNSTORABLE = Move(
    (_S.RUNNING,),
    (_S.FAILED,),
    """
    UPDATE jobs SET status = 'failed', error = %(error)s, finished_at = now(), updated_at = now()
     WHERE id = %(id)s AND status = 'running' AND provider_batch_id = %(provider_batch_id)s
    RETURNING id
""",
)

# Policy "live": back to the feeder, as a re-drive does; classify keeps the routing
# and, the job being a live one now, queues it on its tier. From `running` (a
# request that errored or expired) or `routed` (a create refused outright).
BATCH_RERUN_LIVE = Move(
    (_S.ROUTED, _S.RUNNING),
    (_S.QUEUED,),
    """
    UPDATE jobs SET status = 'queued', batch_api = false, enqueued_at = NULL,
                    lease_expires_at = NULL, error = %(error)s, updated_at = now()
     WHERE id = %(id)s AND status = %(from_status)s AND batch_api
       AND (%(provider_batch_id)s::bigint IS NULL OR provider_batch_id = %(provider_batch_id)s)
""",
)

# Policy "fail", or a request cancelled because the tierroute batch was.
BATCH_END = Move(
    (_S.ROUTED, _S.RUNNING),
    (_S.FAILED, _S.CANCELLED),
    """
    UPDATE jobs SET status = %(status)s, error = %(error)s, lease_expires_at = NULL,
                    finished_at = now(), updated_at = now()
     WHERE id = %(id)s AND status = %(from_status)s AND batch_api
       AND (%(provider_batch_id)s::bigint IS NULL OR provider_batch_id = %(provider_batch_id)s)
""",
)

# --- requests: cancel, retry, redrive (ORM, from `sources` and `targets`) ----

# Queued, being classified, or routed and waiting for a tier worker: none has
# made its model call, and the complete task's claim skips a cancelled job.
CANCEL = Move(NOT_STARTED, (_S.CANCELLED,))
# Back to queued and unsent: the feeder (or the caller) sends them again, and
# classify keeps the routing they already have. Attempts start over.
REDRIVE = Move(REDRIVABLE, (_S.QUEUED,))

# Every move above, by name, for the test that reads their SQL.
STATEMENTS: dict[str, Move] = {
    name: value for name, value in globals().items() if isinstance(value, Move)
}


def claim_for_classify(cur: Cursor, job_id: uuid.UUID, lease_s: float) -> ClassifyClaim | None:
    """Take a queued job (or one whose classifier died); None if it is not ours."""
    params = {"id": job_id, "lease_s": lease_s}
    return fetch_one_as(cur, ClassifyClaim, CLAIM_FOR_CLASSIFY.statement, params)


def keep_route(cur: Cursor, job_id: uuid.UUID) -> None:
    """A re-driven job keeps its tier: routed again, its classify lease released."""
    cur.execute(KEEP_ROUTE.statement, {"id": job_id})


def record_decision(cur: Cursor, job_id: uuid.UUID, decision: RoutingDecision) -> bool:
    """Route the claimed job and store why; False if it was cancelled or routed meanwhile."""
    cur.execute(ROUTE.statement, {"id": job_id, "tier": decision.tier})
    if cur.fetchone() is None:
        return False
    cur.execute(
        INSERT_DECISION,
        {
            "id": job_id,
            "tier": decision.tier,
            "proposed_tier": decision.proposed_tier,
            "confidence": decision.confidence,
            "score": decision.score,
            "reasoning": decision.reasoning,
            "classifier": decision.classifier,
            "classifier_version": decision.version,
            "cost_ratio": decision.cost_ratio,
            "fallback_reason": decision.fallback_reason,
        },
    )
    return True


def route_queued(cur: Cursor, decisions: list[tuple[uuid.UUID, RoutingDecision]]) -> set[uuid.UUID]:
    """Route still-queued jobs and store their decisions; the ids that were routed."""
    if not decisions:
        return set()
    cur.execute(
        ROUTE_QUEUED.statement,
        {
            "ids": [job_id for job_id, _ in decisions],
            "tiers": [d.tier for _, d in decisions],
            "proposed": [d.proposed_tier for _, d in decisions],
            "confidence": [d.confidence for _, d in decisions],
            "score": [d.score for _, d in decisions],
            "reasoning": [d.reasoning for _, d in decisions],
            "classifier": [d.classifier for _, d in decisions],
            "version": [d.version for _, d in decisions],
            "cost_ratio": [d.cost_ratio for _, d in decisions],
            "fallback": [d.fallback_reason for _, d in decisions],
        },
    )
    return {row[0] for row in cur.fetchall()}


def reject_for_budget(cur: Cursor, job_id: uuid.UUID, error: str) -> None:
    """Fail a job being classified, or routed, that no budget has room for."""
    cur.execute(REJECT_FOR_BUDGET.statement, {"id": job_id, "error": error})


def claim_for_complete(cur: Cursor, job_id: uuid.UUID, lease_s: float) -> CompleteClaim | None:
    """Take a routed job (or a retry, or one whose worker died); None if not ours."""
    params = {"id": job_id, "lease_s": lease_s}
    return fetch_one_as(cur, CompleteClaim, CLAIM_FOR_COMPLETE.statement, params)


def finish(
    cur: Cursor,
    job_id: uuid.UUID,
    status: JobStatus,
    *,
    result_text: str | None = None,
    error: str | None = None,
) -> None:
    """Move a running job to its final status."""
    params = {"id": job_id, "status": FINISH.check_target(status)}
    cur.execute(FINISH.statement, {**params, "result_text": result_text, "error": error})


def succeed_with_call(cur: Cursor, record: CallRecord, job_id: uuid.UUID, result_text: str) -> None:
    """Store a job's answer and its billed call in one statement."""
    params = {**call_params(record, job_id), "result_text": result_text}
    cur.execute(SUCCEED_WITH_CALL.statement, params)


def fail_with_call(cur: Cursor, record: CallRecord, job_id: uuid.UUID, error: str) -> None:
    """Store a job's billed call and fail the job with `error`, in one statement."""
    cur.execute(FAIL_WITH_CALL.statement, {**call_params(record, job_id), "error": error})


def hand_to_message_batch(cur: Cursor, job_ids: list[uuid.UUID], provider_batch_id: int) -> None:
    """Routed batch-mode jobs now run in a Message Batch: one attempt each, no lease."""
    params = {"ids": job_ids, "provider_batch_id": provider_batch_id}
    cur.execute(HAND_TO_MESSAGE_BATCH.statement, params)


def batch_succeeded(cur: Cursor, job_id: uuid.UUID, provider_batch_id: int, text: str) -> bool:
    """Store a Message Batch answer; False if the job is no longer running in that batch."""
    params = {"id": job_id, "provider_batch_id": provider_batch_id, "text": text}
    cur.execute(BATCH_SUCCEEDED.statement, params)
    return cur.fetchone() is not None


def batch_failed_unstorable(
    cur: Cursor, job_id: uuid.UUID, provider_batch_id: int, error: str
) -> bool:
    """Fail a job whose billed batch answer cannot be stored; False if it had moved on."""
    params = {"id": job_id, "provider_batch_id": provider_batch_id, "error": error}
    cur.execute(BATCH_FAILED_UNSTORABLE.statement, params)
    return cur.fetchone() is not None


def batch_rerun_live(
    cur: Cursor, job_id: uuid.UUID, provider_batch_id: int | None, error: str, from_status: str
) -> None:
    """Send a batch-mode job back to the feeder as a live job (it keeps its tier)."""
    params = {"id": job_id, "provider_batch_id": provider_batch_id, "error": error}
    params["from_status"] = BATCH_RERUN_LIVE.check_source(from_status)
    cur.execute(BATCH_RERUN_LIVE.statement, params)


def batch_end(
    cur: Cursor,
    job_id: uuid.UUID,
    provider_batch_id: int | None,
    status: JobStatus,
    error: str,
    from_status: str,
) -> None:
    """End a batch-mode job failed (policy "fail") or cancelled (its batch was)."""
    params: dict[str, Any] = {"id": job_id, "provider_batch_id": provider_batch_id}
    params |= {"error": error, "status": BATCH_END.check_target(status)}
    cur.execute(BATCH_END.statement, {**params, "from_status": BATCH_END.check_source(from_status)})


def cancel_not_started(session: Session, batch_id: uuid.UUID) -> int:
    """Cancel a batch's jobs that have made no model call yet; returns how many."""
    # Locked in id order first, as the classify chunks lock theirs (ROUTE_QUEUED):
    # a plain UPDATE locked rows in scan order and deadlocked with a chunk being
    # routed, so the cancel failed and the batch ran anyway (issue 16).
    locked = (
        select(Job.id)
        .where(Job.batch_id == batch_id, Job.status.in_(CANCEL.sources))
        .order_by(Job.id)
        .with_for_update()
    )
    cancelled = session.execute(
        update(Job)
        .where(Job.id.in_(locked.scalar_subquery()))
        .values(
            status=CANCEL.target,
            error="cancelled before it started",
            finished_at=func.now(),
            updated_at=func.now(),
        )
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).all()
    return len(cancelled)


def redrive(session: Session, *conditions: Any) -> list[uuid.UUID]:
    """Send the failed or dead jobs matching `conditions` back to queued; their ids."""
    rows = session.execute(
        update(Job)
        .where(Job.status.in_(REDRIVE.sources), *conditions)
        .values(
            status=REDRIVE.target,
            enqueued_at=None,
            attempts=0,
            error=None,
            lease_expires_at=None,
            started_at=None,
            finished_at=None,
            updated_at=func.now(),
        )
        .returning(Job.id)
    ).all()
    return [row.id for row in rows]
