"""The pipeline's per-job SQL besides status moves: leases released, reads, billed calls.

A job's status changes only in tierroute/store/transitions.py; these statements
drop or read a lease, read a job for its next step, and store billed calls.
Plain SQL on a psycopg cursor (see `engine.raw_transaction`): they run several times
per job, and the ORM's per-statement work was a large share of a worker's CPU.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tierroute.domain.decisions import CallRecord
from tierroute.store.engine import Cursor, fetch_all_as, fetch_one_as

LEASE_EXPIRED = "(lease_expires_at IS NULL OR lease_expires_at < now())"

# The call failed transiently: the job stays running, with no lease, until the
# retry's claim takes it (transitions.CLAIM_FOR_COMPLETE).
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

RUN_STATE = "SELECT status, tier, batch_api FROM jobs WHERE id = %(id)s"

# A classify batch reads its jobs first: most are plainly queued and are routed by
# transitions.ROUTE_QUEUED; the rest take the one-job path (tierroute/pipeline/steps.py).
READ_FOR_CLASSIFY = """
    SELECT id, status, tier, prompt, system, force_tier, batch_api FROM jobs
     WHERE id = ANY(%(ids)s)
"""


@dataclass(frozen=True)
class RunState:
    """Where a job stands for the classify step that found it claimed (RUN_STATE)."""

    status: str
    tier: str | None
    batch_api: bool


@dataclass(frozen=True)
class ClassifyRead:
    """A job of a classify chunk, read before it is routed (READ_FOR_CLASSIFY)."""

    id: uuid.UUID
    status: str
    tier: str | None
    prompt: str
    system: str | None
    force_tier: str | None
    batch_api: bool


def tier_awaiting_run(cur: Cursor, job_id: uuid.UUID) -> RunState | None:
    """A job's status, tier and mode; None if it does not exist."""
    return fetch_one_as(cur, RunState, RUN_STATE, {"id": job_id})


def lease_left(cur: Cursor, job_id: uuid.UUID) -> float | None:
    """Seconds left on an unfinished job's lease; None if it has none or it ran out."""
    cur.execute(LEASE_LEFT, {"id": job_id})
    row = cur.fetchone()
    return float(row[0]) if row else None


def call_recorded(cur: Cursor, job_id: uuid.UUID, request_id: str | None) -> bool:
    """Whether this call (by the API's request id) is already stored for the job."""
    if request_id is None:
        return False
    cur.execute(CALL_RECORDED, {"job_id": job_id, "request_id": request_id})
    return cur.fetchone() is not None


def release_for_retry(cur: Cursor, job_id: uuid.UUID, reason: str) -> None:
    """Note the failure and drop the lease so the retry message can claim the job."""
    cur.execute(RELEASE_FOR_RETRY, {"id": job_id, "error": reason})


def release_classify(cur: Cursor, job_id: uuid.UUID) -> None:
    """Drop the classify lease of a job whose classifier call must wait."""
    cur.execute(RELEASE_CLASSIFY, {"id": job_id})


def unclaim_complete(cur: Cursor, job_id: uuid.UUID, reason: str) -> None:
    """Hand back a claimed job without counting the attempt: no call was made."""
    cur.execute(UNCLAIM_COMPLETE, {"id": job_id, "error": reason})


def insert_call(
    cur: Cursor, record: CallRecord, job_id: uuid.UUID | None, api_key_id: uuid.UUID | None = None
) -> None:
    """Store one billed call as a `model_calls` row; a call with no job names its key."""
    cur.execute(INSERT_CALL, call_params(record, job_id, api_key_id))


def call_params(
    record: CallRecord, job_id: uuid.UUID | None, api_key_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """The parameters of INSERT_CALL for one billed call."""
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


def read_for_classify(cur: Cursor, job_ids: list[uuid.UUID]) -> list[ClassifyRead]:
    """Each existing job of a classify chunk."""
    return fetch_all_as(cur, ClassifyRead, READ_FOR_CLASSIFY, {"ids": job_ids})
