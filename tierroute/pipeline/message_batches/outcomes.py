"""What happens to a job when its Message Batch request ends: its answer, or the failure policy.

Every statement names the job's state and Message Batch in its WHERE, so a result
applied twice (a poller that died mid-way, two pollers) changes nothing the second
time, and a call is billed (a `model_calls` row) only by the update that finished the job.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Literal

from tierroute.domain.decisions import CallRecord
from tierroute.store import leases
from tierroute.store.retry import DATABASE_ERRORS

log = logging.getLogger(__name__)

Policy = Literal["live", "fail"]

SUCCEEDED = """
    UPDATE jobs SET status = 'succeeded', result_text = %(text)s, error = NULL,
                    finished_at = now(), updated_at = now()
     WHERE id = %(id)s AND status = 'running' AND provider_batch_id = %(provider_batch_id)s
    RETURNING id
"""
# Policy "live": back to the feeder, as a re-drive does; classify keeps the routing
# and, the job being a live one now, queues it on its tier.
RERUN_LIVE = """
    UPDATE jobs SET status = 'queued', batch_api = false, enqueued_at = NULL,
                    lease_expires_at = NULL, error = %(error)s, updated_at = now()
     WHERE id = %(id)s AND status = %(from_status)s AND batch_api
       AND (%(provider_batch_id)s::bigint IS NULL OR provider_batch_id = %(provider_batch_id)s)
"""
# Policy "fail", or a request cancelled because the tierroute batch was.
END = """
    UPDATE jobs SET status = %(status)s, error = %(error)s, lease_expires_at = NULL,
                    finished_at = now(), updated_at = now()
     WHERE id = %(id)s AND status = %(from_status)s AND batch_api
       AND (%(provider_batch_id)s::bigint IS NULL OR provider_batch_id = %(provider_batch_id)s)
"""
# A succeeded request whose answer Postgres refuses: billed, so failed, not re-run.
FAILED_UNSTORABLE = """
    UPDATE jobs SET status = 'failed', error = %(error)s, finished_at = now(), updated_at = now()
     WHERE id = %(id)s AND status = 'running' AND provider_batch_id = %(provider_batch_id)s
    RETURNING id
"""
STILL_RUNNING = """
    SELECT id FROM jobs WHERE provider_batch_id = %(provider_batch_id)s AND status = 'running'
"""


def succeed(
    cur: Any, job_id: uuid.UUID, provider_batch_id: int, text: str, record: CallRecord
) -> bool:
    """Store a job's answer and its billed call; False if the job had moved on or failed.

    An answer Postgres refuses (a NUL character in it) fails its job alone, with its
    bill kept: under a savepoint, so the batch's other results still apply. Else the
    whole batch would roll back on every poll, for ever.
    """
    try:
        with cur.connection.transaction():  # a savepoint in the poll's transaction
            cur.execute(
                SUCCEEDED, {"id": job_id, "provider_batch_id": provider_batch_id, "text": text}
            )
            if cur.fetchone() is None:
                return False
            leases.insert_call(cur, record, job_id)
    except DATABASE_ERRORS:
        raise
    except Exception as exc:
        error = f"batch_api: the answer could not be stored: {type(exc).__name__}: {exc}"
        log.error("Message Batch result for job %s: %s", job_id, error)
        cur.execute(
            FAILED_UNSTORABLE,
            {"id": job_id, "provider_batch_id": provider_batch_id, "error": error},
        )
        if cur.fetchone() is not None:
            leases.insert_call(cur, record, job_id)
        return False
    return True


def settle_failed(
    cur: Any,
    job_id: uuid.UUID,
    provider_batch_id: int | None,
    reason: str,
    policy: Policy,
    *,
    cancelled: bool = False,
    from_status: str = "running",
) -> None:
    """An errored, expired or cancelled request: re-run live, fail, or (cancelled) cancel."""
    params = {
        "id": job_id,
        "provider_batch_id": provider_batch_id,
        "error": f"batch_api: {reason}",
        "from_status": from_status,
    }
    if cancelled:
        cur.execute(END, {**params, "status": "cancelled"})
    elif policy == "live":
        cur.execute(RERUN_LIVE, {**params, "error": f"batch_api: {reason}; re-running live"})
    else:
        cur.execute(END, {**params, "status": "failed"})


def settle_unsubmitted(cur: Any, job_ids: list[uuid.UUID], reason: str, policy: Policy) -> None:
    """Jobs whose Message Batch the API refused outright (a 4xx on create)."""
    for job_id in job_ids:
        settle_failed(cur, job_id, None, reason, policy, from_status="classifying")


def settle_missing(cur: Any, provider_batch_id: int, policy: Policy) -> int:
    """Jobs the ended batch's results did not mention; treated like errored requests."""
    cur.execute(STILL_RUNNING, {"provider_batch_id": provider_batch_id})
    missing = [row[0] for row in cur.fetchall()]
    for job_id in missing:
        settle_failed(cur, job_id, provider_batch_id, "no result for this request", policy)
    return len(missing)
