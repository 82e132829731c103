"""The pipeline's per-job SQL: claims with leases, decisions, calls, results.

Plain SQL on a psycopg cursor (see `db.raw_transaction`): these statements run
several times per job, and the ORM's per-statement work was half of a worker's
CPU. Every claim is a conditional UPDATE, so a duplicate message does nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

from tierroute.domain.decisions import CallRecord, RoutingDecision
from tierroute.store.models import JobStatus

LEASE_EXPIRED = "(lease_expires_at IS NULL OR lease_expires_at < now())"

CLAIM_FOR_CLASSIFY = f"""
    UPDATE jobs SET status = 'classifying', updated_at = now(),
                    lease_expires_at = now() + make_interval(secs => %(lease_s)s)
     WHERE id = %(id)s
       AND (status = 'queued'
            -- a classifier that died mid-call left its lease to expire
            OR (status = 'classifying' AND tier IS NULL AND {LEASE_EXPIRED}))
    RETURNING prompt, system, force_tier, tier, batch_api
"""

# A re-driven job keeps the routing it already has: no second classifier call.
KEEP_ROUTE = """
    UPDATE jobs SET classified_at = coalesce(classified_at, now()), lease_expires_at = NULL,
                    updated_at = now()
     WHERE id = %(id)s AND status = 'classifying'
"""

ROUTED = """
    UPDATE jobs SET tier = %(tier)s, classified_at = now(), lease_expires_at = NULL,
                    updated_at = now()
     WHERE id = %(id)s AND status = 'classifying' AND tier IS NULL
    RETURNING id
"""

INSERT_DECISION = """
    INSERT INTO routing_decisions (job_id, tier, proposed_tier, confidence, score, reasoning,
                                   classifier, classifier_version, cost_ratio, fallback_reason)
    VALUES (%(id)s, %(tier)s, %(proposed_tier)s, %(confidence)s, %(score)s, %(reasoning)s,
            %(classifier)s, %(classifier_version)s, %(cost_ratio)s, %(fallback_reason)s)
"""

# The claim commits on its own (autocommit) without waiting for the WAL to reach
# disk: set_config(..., true) lasts until the end of the statement's own
# transaction, its commit included, and the connection keeps its setting. Measured
# at 600 calls in flight, a flush per claim kept Postgres backends queued on the
# WAL write lock. A claim lost in a Postgres crash costs at most a repeated call,
# as a worker dying mid-call does; the job's result commit is durable and flushes
# the WAL up to itself, this claim included.
CLAIM_FOR_COMPLETE = f"""
    UPDATE jobs SET status = 'running', attempts = attempts + 1, updated_at = now(),
                    started_at = coalesce(started_at, now()),
                    lease_expires_at = now() + make_interval(secs => %(lease_s)s)
      FROM (SELECT set_config('synchronous_commit', 'off', true)) AS no_wal_wait
     WHERE id = %(id)s AND tier IS NOT NULL
       AND NOT batch_api  -- a batch-mode job is answered by its Message Batch
       AND (status = 'classifying'
            -- a retry, or a worker that died mid-call and left its lease
            OR (status = 'running' AND {LEASE_EXPIRED}))
    RETURNING prompt, system, max_tokens, tier, thinking_override, attempts, api_key_id
"""

FINISH = """
    UPDATE jobs SET status = %(status)s, error = %(error)s,
                    result_text = coalesce(%(result_text)s, result_text),
                    lease_expires_at = NULL, finished_at = now(), updated_at = now()
     WHERE id = %(id)s AND status = 'running'
"""

RELEASE_FOR_RETRY = """
    UPDATE jobs SET error = %(error)s, lease_expires_at = NULL, updated_at = now()
     WHERE id = %(id)s AND status = 'running'
"""

# The classifier was rate limited locally: drop the lease so the retry can claim again.
RELEASE_CLASSIFY = """
    UPDATE jobs SET lease_expires_at = NULL, updated_at = now()
     WHERE id = %(id)s AND status = 'classifying' AND tier IS NULL
"""

# The call was rate limited locally, so the claim's attempt did not happen: undo it.
UNCLAIM_COMPLETE = """
    UPDATE jobs SET attempts = greatest(attempts - 1, 0), error = %(error)s,
                    lease_expires_at = NULL, updated_at = now()
     WHERE id = %(id)s AND status = 'running'
"""

LEASE_LEFT = """
    SELECT extract(epoch FROM lease_expires_at - now()) FROM jobs
     WHERE id = %(id)s AND status IN ('classifying', 'running') AND lease_expires_at > now()
"""

CALL_RECORDED = """
    SELECT 1 FROM model_calls WHERE job_id = %(job_id)s AND request_id = %(request_id)s
"""

INSERT_CALL = """
    INSERT INTO model_calls (job_id, purpose, model, tier, input_tokens, output_tokens,
                             cache_creation_input_tokens, cache_read_input_tokens, cost_usd,
                             cost_if_opus_usd, latency_ms, request_id, stop_reason, simulated,
                             batch_api, cache_savings_usd, api_key_id)
    VALUES (%(job_id)s, %(purpose)s, %(model)s, %(tier)s, %(input_tokens)s, %(output_tokens)s,
            %(cache_creation)s, %(cache_read)s, %(cost_usd)s, %(cost_if_opus_usd)s,
            %(latency_ms)s, %(request_id)s, %(stop_reason)s, %(simulated)s,
            %(batch_api)s, %(cache_savings_usd)s, %(api_key_id)s)
"""


# The answer and its bill in one statement, so the step needs no transaction: a
# data-modifying CTE runs whether or not the outer statement reads it.
SUCCEED_WITH_CALL = f"""
    WITH billed AS ({INSERT_CALL})
    UPDATE jobs SET status = 'succeeded', error = NULL, result_text = %(result_text)s,
                    lease_expires_at = NULL, finished_at = now(), updated_at = now()
     WHERE id = %(job_id)s AND status = 'running'
"""

# A call made and billed whose answer Postgres refuses (a NUL character in it): the
# bill is kept and the job fails with the reason, in one statement, so it is neither
# billed twice nor sent again.
FAIL_WITH_CALL = f"""
    WITH billed AS ({INSERT_CALL})
    UPDATE jobs SET status = 'failed', error = %(error)s,
                    lease_expires_at = NULL, finished_at = now(), updated_at = now()
     WHERE id = %(job_id)s AND status = 'running'
"""

# A classify batch reads its jobs first: most are plainly queued and are routed by
# ROUTE_QUEUED; the rest take the one-job path (tierroute/pipeline/steps.py).
READ_FOR_CLASSIFY = """
    SELECT id, status, tier, prompt, system, force_tier, batch_api FROM jobs
     WHERE id = ANY(%(ids)s)
"""

# Routes many queued jobs and stores their decisions in one statement. The
# conditional UPDATE is the claim: a job cancelled, or routed by a duplicate
# message, since it was read is left alone and gets no decision row.
ROUTE_QUEUED = """
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
        -- (tierroute/store/jobs.py): locked in plan order, a chunk and a cancel each held
        -- rows the other waited for, and Postgres killed one (issue 16).
        SELECT id FROM jobs
         WHERE id = ANY(%(ids)s::uuid[]) AND (status = 'queued') IS TRUE AND tier IS NULL
         ORDER BY id
           FOR UPDATE
    ), routed AS (
        UPDATE jobs SET status = 'classifying', tier = decided.tier, classified_at = now(),
                        lease_expires_at = NULL, updated_at = now()
          FROM decided
         -- The chunk's rows are found by primary key (`= ANY`), and the status test
         -- is written so that no index serves it (IS TRUE): otherwise, on a freshly
         -- copied batch without statistics, and in the generic plan psycopg's
         -- prepared statement settles on, Postgres scanned every queued job for
         -- each chunk: 100 ms a chunk with 10,000 queued, instead of 2 ms.
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
"""


def claim_for_classify(cur: Any, job_id: uuid.UUID, lease_s: float) -> Any | None:
    """Take a queued job (or one whose classifier died); None if it is not ours."""
    cur.execute(CLAIM_FOR_CLASSIFY, {"id": job_id, "lease_s": lease_s})
    return cur.fetchone()


def keep_route(cur: Any, job_id: uuid.UUID) -> None:
    """Release the classify lease of a re-driven job that is already routed."""
    cur.execute(KEEP_ROUTE, {"id": job_id})


def tier_awaiting_run(cur: Any, job_id: uuid.UUID) -> tuple[str | None, str | None, bool]:
    """(status, tier, batch_api) of a job, (None, None, False) if it does not exist."""
    cur.execute("SELECT status, tier, batch_api FROM jobs WHERE id = %s", (job_id,))
    row = cur.fetchone()
    return (row[0], row[1], bool(row[2])) if row else (None, None, False)


def record_decision(cur: Any, job_id: uuid.UUID, decision: RoutingDecision) -> bool:
    """Store the routing; False if the job was cancelled or routed meanwhile."""
    cur.execute(ROUTED, {"id": job_id, "tier": decision.tier})
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


def lease_left(cur: Any, job_id: uuid.UUID) -> float | None:
    """Seconds left on an unfinished job's lease; None if it has none or it ran out."""
    cur.execute(LEASE_LEFT, {"id": job_id})
    row = cur.fetchone()
    return float(row[0]) if row else None


def call_recorded(cur: Any, job_id: uuid.UUID, request_id: str | None) -> bool:
    """Whether this call (by the API's request id) is already stored for the job."""
    if request_id is None:
        return False
    cur.execute(CALL_RECORDED, {"job_id": job_id, "request_id": request_id})
    return cur.fetchone() is not None


def claim_for_complete(cur: Any, job_id: uuid.UUID, lease_s: float) -> Any | None:
    """Take a routed job (or a retry, or one whose worker died); None if not ours."""
    cur.execute(CLAIM_FOR_COMPLETE, {"id": job_id, "lease_s": lease_s})
    return cur.fetchone()


def finish(
    cur: Any,
    job_id: uuid.UUID,
    status: JobStatus,
    *,
    result_text: str | None = None,
    error: str | None = None,
) -> None:
    """Move a running job to its final status."""
    cur.execute(
        FINISH, {"id": job_id, "status": status.value, "result_text": result_text, "error": error}
    )


def release_for_retry(cur: Any, job_id: uuid.UUID, reason: str) -> None:
    """Note the failure and drop the lease so the retry message can claim the job."""
    cur.execute(RELEASE_FOR_RETRY, {"id": job_id, "error": reason})


def release_classify(cur: Any, job_id: uuid.UUID) -> None:
    """Drop the classify lease of a job whose classifier call must wait."""
    cur.execute(RELEASE_CLASSIFY, {"id": job_id})


def unclaim_complete(cur: Any, job_id: uuid.UUID, reason: str) -> None:
    """Hand back a claimed job without counting the attempt: no call was made."""
    cur.execute(UNCLAIM_COMPLETE, {"id": job_id, "error": reason})


def insert_call(
    cur: Any, record: CallRecord, job_id: uuid.UUID | None, api_key_id: uuid.UUID | None = None
) -> None:
    """Store one billed call as a `model_calls` row; a call with no job names its key."""
    cur.execute(INSERT_CALL, _call_params(record, job_id, api_key_id))


def _call_params(
    record: CallRecord, job_id: uuid.UUID | None, api_key_id: uuid.UUID | None = None
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "api_key_id": api_key_id,
        "purpose": record.purpose,
        "model": record.model,
        "tier": record.tier,
        "input_tokens": record.tokens.input_tokens,
        "output_tokens": record.tokens.output_tokens,
        "cache_creation": record.tokens.cache_creation_input_tokens,
        "cache_read": record.tokens.cache_read_tokens,
        "cost_usd": record.cost_usd,
        "cost_if_opus_usd": record.cost_if_opus_usd,
        "latency_ms": record.latency_ms,
        "request_id": record.request_id,
        "stop_reason": record.stop_reason,
        "simulated": record.simulated,
        "batch_api": record.batch_api,
        "cache_savings_usd": record.cache_savings_usd,
    }


def read_for_classify(cur: Any, job_ids: list[uuid.UUID]) -> list[Any]:
    """(id, status, tier, prompt, system, force_tier, batch_api) of each existing job."""
    cur.execute(READ_FOR_CLASSIFY, {"ids": job_ids})
    return list(cur.fetchall())


def route_queued(cur: Any, decisions: list[tuple[uuid.UUID, RoutingDecision]]) -> set[uuid.UUID]:
    """Route still-queued jobs and store their decisions; the ids that were routed."""
    if not decisions:
        return set()
    cur.execute(
        ROUTE_QUEUED,
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


def succeed_with_call(cur: Any, record: CallRecord, job_id: uuid.UUID, result_text: str) -> None:
    """Store a job's answer and its billed call in one statement."""
    cur.execute(SUCCEED_WITH_CALL, {**_call_params(record, job_id), "result_text": result_text})


def fail_with_call(cur: Any, record: CallRecord, job_id: uuid.UUID, error: str) -> None:
    """Store a job's billed call and fail the job with `error`, in one statement."""
    cur.execute(FAIL_WITH_CALL, {**_call_params(record, job_id), "error": error})
