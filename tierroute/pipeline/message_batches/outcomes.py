"""What happens to a job when its Message Batch request ends: its answer, or the failure policy.

Every move (tierroute/store/transitions.py) names the job's state and Message Batch
in its WHERE, so a result
applied twice (a poller that died mid-way, two pollers) changes nothing the second
time, and a call is billed (a `model_calls` row) only by the update that finished the job.
"""

from __future__ import annotations

import logging
import uuid
from typing import Literal

from tierroute.domain.decisions import CallRecord
from tierroute.domain.status import JobStatus
from tierroute.store import leases, transitions
from tierroute.store.engine import Cursor
from tierroute.store.retry import DATABASE_ERRORS

log = logging.getLogger(__name__)

Policy = Literal["live", "fail"]

STILL_RUNNING = """
    SELECT id FROM jobs WHERE provider_batch_id = %(provider_batch_id)s AND status = 'running'
"""


def succeed(
    cur: Cursor, job_id: uuid.UUID, provider_batch_id: int, text: str, record: CallRecord
) -> bool:
    """Store a job's answer and its billed call; False if the job had moved on or failed.

    An answer Postgres refuses (a NUL character in it) fails its job alone, with its
    bill kept: under a savepoint, so the batch's other results still apply. Else the
    whole batch would roll back on every poll, for ever.
    """
    try:
        with cur.connection.transaction():  # a savepoint in the poll's transaction
            if not transitions.batch_succeeded(cur, job_id, provider_batch_id, text):
                return False
            leases.insert_call(cur, record, job_id)
    except DATABASE_ERRORS:
        raise
    except Exception as exc:
        error = f"batch_api: the answer could not be stored: {type(exc).__name__}: {exc}"
        log.error("Message Batch result for job %s: %s", job_id, error)
        if transitions.batch_failed_unstorable(cur, job_id, provider_batch_id, error):
            leases.insert_call(cur, record, job_id)
        return False
    return True


def settle_failed(
    cur: Cursor,
    job_id: uuid.UUID,
    provider_batch_id: int | None,
    reason: str,
    policy: Policy,
    *,
    cancelled: bool = False,
    from_status: JobStatus = JobStatus.RUNNING,
) -> None:
    """An errored, expired or cancelled request: re-run live, fail, or (cancelled) cancel."""
    error = f"batch_api: {reason}"
    if cancelled:
        end = JobStatus.CANCELLED
        transitions.batch_end(cur, job_id, provider_batch_id, end, error, from_status)
    elif policy == "live":
        error += "; re-running live"
        transitions.batch_rerun_live(cur, job_id, provider_batch_id, error, from_status)
    else:
        end = JobStatus.FAILED
        transitions.batch_end(cur, job_id, provider_batch_id, end, error, from_status)


def settle_unsubmitted(cur: Cursor, job_ids: list[uuid.UUID], reason: str, policy: Policy) -> None:
    """Jobs whose Message Batch the API refused outright (a 4xx on create)."""
    for job_id in job_ids:
        settle_failed(cur, job_id, None, reason, policy, from_status=JobStatus.ROUTED)


def settle_missing(cur: Cursor, provider_batch_id: int, policy: Policy) -> int:
    """Jobs the ended batch's results did not mention; treated like errored requests."""
    cur.execute(STILL_RUNNING, {"provider_batch_id": provider_batch_id})
    missing = [row[0] for row in cur.fetchall()]
    for job_id in missing:
        settle_failed(cur, job_id, provider_batch_id, "no result for this request", policy)
    return len(missing)
