"""Submitting: once every job of a batch is routed, one Message Batch per tier (split to fit).

Two pollers may run at once (every classify worker runs a beat). The batch row is
locked with FOR UPDATE SKIP LOCKED around each create call, so only one of them
submits a batch's jobs, and the jobs move to `running` in the same transaction that
records the Message Batch. A crash between Anthropic accepting the batch and that
commit leaves the jobs to be submitted again (the first batch's results are then
never read); the window is one commit long. A create that times out or loses its
connection may have been accepted all the same: its jobs are marked, and the next
try looks for that batch before it creates one (tierroute/pipeline/message_batches/adopt.py).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from tierroute.domain.errors import PermanentProviderError, RetryableProviderError
from tierroute.llm.caching import cache_scope
from tierroute.pipeline.context import Runtime
from tierroute.pipeline.message_batches import adopt, sdk
from tierroute.pipeline.message_batches.outcomes import settle_unsubmitted
from tierroute.pipeline.message_batches.requests import JobRow, batch_requests, split
from tierroute.store import request_params, transitions
from tierroute.store.engine import Cursor, fetch_all_as, one_row, raw_transaction

log = logging.getLogger(__name__)

# Batches whose batch-mode jobs not yet submitted are all routed. The partial index
# ix_jobs_batch_api_waiting holds only those jobs, so this stays small.
READY_BATCHES = """
    SELECT batch_id FROM jobs
     WHERE batch_api AND status IN ('queued', 'classifying', 'routed')
     GROUP BY batch_id
    HAVING bool_and(status = 'routed')
"""
LOCK_BATCH = "SELECT id FROM batches WHERE id = %(batch_id)s FOR UPDATE SKIP LOCKED"
WAITING_TIERS = """
    SELECT DISTINCT tier FROM jobs
     WHERE batch_id = %(batch_id)s AND batch_api AND status = 'routed'
"""
WAITING_JOBS = """
    SELECT id, prompt, system, max_tokens, thinking_override, api_key_id, request_params FROM jobs
     WHERE batch_id = %(batch_id)s AND batch_api AND status = 'routed' AND tier = %(tier)s
     ORDER BY created_at, id
     LIMIT %(limit)s
       FOR UPDATE
"""
INSERT_PROVIDER_BATCH = """
    INSERT INTO provider_batches (batch_id, tier, anthropic_batch_id, processing_status,
                                  request_count, processing, succeeded, errored, canceled,
                                  expired, created_at, expires_at)
    VALUES (%(batch_id)s, %(tier)s, %(anthropic_batch_id)s, %(status)s, %(count)s,
            %(processing)s, %(succeeded)s, %(errored)s, %(canceled)s, %(expired)s,
            %(created_at)s, %(expires_at)s)
    RETURNING id
"""


def ready_batches(rt: Runtime) -> list[uuid.UUID]:
    """Batches with batch-mode jobs to submit and none still waiting for its routing."""
    with raw_transaction(flush_wal=False) as cur:
        cur.execute(READY_BATCHES)
        return [row[0] for row in cur.fetchall()]


def submit_batch(rt: Runtime, batch_id: uuid.UUID) -> int:
    """Submit a batch's routed jobs, tier by tier; returns how many Message Batches were made."""
    with raw_transaction(flush_wal=False) as cur:
        cur.execute(WAITING_TIERS, {"batch_id": batch_id})
        tiers = sorted(row[0] for row in cur.fetchall())
    created = 0
    for tier in tiers:
        while True:
            made = _submit_one(rt, batch_id, tier)
            if made is None:
                break
            created += made
    return created


def _submit_one(rt: Runtime, batch_id: uuid.UUID, tier_name: str) -> int | None:
    """One Message Batch of the tier's waiting jobs: 1 made, 0 refused, None: nothing to do."""
    settings = rt.settings
    tier = rt.tiers.get(tier_name)
    with raw_transaction() as cur:
        cur.execute(LOCK_BATCH, {"batch_id": batch_id})
        if cur.fetchone() is None:
            return None  # another poller is submitting this batch
        params = {"batch_id": batch_id, "tier": tier_name, "limit": settings.batch_api_max_requests}
        rows = fetch_all_as(cur, JobRow, WAITING_JOBS, params)
        if not rows:
            return None
        requests, adapted = batch_requests(
            tier, rows, lambda row: cache_scope(settings, row.api_key_id)
        )
        for job_id, rules in adapted.items():
            request_params.record_adaptations(cur, job_id, tier.model, rules)
        chunk = next(split(requests, settings.batch_api_max_requests, settings.batch_api_max_bytes))
        ids = [uuid.UUID(request["custom_id"]) for request in chunk]
        earlier = _earlier_create(rt, cur, batch_id, ids)
        if earlier.wait:
            return None  # the next tick looks again
        batch = earlier.batch
        if batch is None:
            sent_at = datetime.now(UTC)
            try:
                batch = sdk.create(rt.client, chunk)
            except RetryableProviderError as exc:
                log.warning(
                    "batch %s: creating the %s Message Batch failed: %s", batch_id, tier_name, exc
                )
                # Accepted or not, we cannot tell: the next try looks for it first.
                adopt.note_unanswered(cur, ids, sent_at, exc.detail)
                return None  # the next tick tries again
            except PermanentProviderError as exc:
                reason = f"Message Batch refused: {exc.detail}"
                settle_unsubmitted(cur, ids, reason, settings.batch_api_failure_policy)
                log.warning("batch %s: %s jobs: %s", batch_id, len(ids), reason)
                return 0
        cur.execute(INSERT_PROVIDER_BATCH, _provider_row(batch_id, tier_name, batch))
        (provider_batch_id,) = one_row(cur)
        transitions.hand_to_message_batch(cur, ids, provider_batch_id)
    log.info("batch %s: %d %s jobs in Message Batch %s", batch_id, len(ids), tier_name, batch.id)
    return 1


def _earlier_create(
    rt: Runtime, cur: Cursor, batch_id: uuid.UUID, ids: list[uuid.UUID]
) -> adopt.Search:
    """The batch an unanswered create made for these jobs, or whether to wait and see."""
    sent_at = adopt.unanswered_since(cur, ids)
    if sent_at is None:
        return adopt.Search()
    try:
        return adopt.find_accepted(rt.client, cur, sent_at, ids)
    except RetryableProviderError as exc:
        log.warning("batch %s: looking for an earlier Message Batch failed: %s", batch_id, exc)
        return adopt.Search(wait=True)
    except PermanentProviderError as exc:
        # Not to be asked: creating again risks a second bill, but never creating
        # would leave the jobs waiting for ever.
        log.error("batch %s: cannot look for an earlier Message Batch: %s", batch_id, exc)
        return adopt.Search()


def _provider_row(batch_id: uuid.UUID, tier: str, batch: Any) -> dict[str, Any]:
    counts = batch.request_counts
    created_at: datetime = batch.created_at
    return {
        "batch_id": batch_id,
        "tier": tier,
        "anthropic_batch_id": batch.id,
        "status": batch.processing_status,
        "count": counts.processing
        + counts.succeeded
        + counts.errored
        + counts.canceled
        + counts.expired,
        "processing": counts.processing,
        "succeeded": counts.succeeded,
        "errored": counts.errored,
        "canceled": counts.canceled,
        "expired": counts.expired,
        "created_at": created_at,
        "expires_at": batch.expires_at,
    }
