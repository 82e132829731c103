"""Shadow judging of batch-mode jobs, through Message Batches at the batch rate.

A `batch_api` job chosen for shadow judging (tierroute/pipeline/shadow.py) is claimed
in the same transaction that stores its answer from its Message Batch: its
`shadow_verdicts` row is written pending, with `batch_stage` 'shadow', and it reserves
the worst case of its two calls at the batch rate against the learning-cost cap and
the budgets, as a live judgement does. From then on every step is a row in Postgres:

1. the poller puts the waiting shadow requests in Message Batches (`provider_batches`
   rows with purpose 'shadow', custom_id = the job id), one per tierroute batch and tier;
2. their results bill the shadow calls and keep each shadow answer on its row, which
   moves to `batch_stage` 'judge', its reservation cut to the judge's worst case;
3. the judge requests go the same way; their results bill the judge calls and store
   the verdicts, or drop the pending rows of requests that failed.

Creates hold the rows' locks and look for an earlier unanswered create first
(adopt.py); results are applied in the poll's transaction (learning_outcomes.py),
each step naming the row's stage and Message Batch in its WHERE, so a poller that
dies or runs twice neither loses a judgement nor bills a call twice.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from anthropic.types.messages import MessageBatch

from tierroute.domain.budget import BudgetExceeded
from tierroute.domain.cost import BATCH_RATE
from tierroute.domain.errors import PermanentProviderError, RetryableProviderError
from tierroute.domain.status import CallPurpose
from tierroute.llm.adapt import wire_body
from tierroute.pipeline import budgets
from tierroute.pipeline.context import Runtime
from tierroute.pipeline.message_batches import adopt, sdk
from tierroute.pipeline.message_batches.learning_outcomes import drop
from tierroute.pipeline.message_batches.requests import split
from tierroute.pipeline.shadow import (
    BATCH_PENDING_TTL_S,
    CAP_LOCK,
    ShadowJob,
    chosen,
    learning_room,
    load_job,
)
from tierroute.store.engine import Cursor, fetch_all_as, one_row, raw_transaction

log = logging.getLogger(__name__)

STAGES = (CallPurpose.SHADOW.value, CallPurpose.JUDGE.value)

ANSWERED_IN = """
    SELECT id FROM jobs
     WHERE provider_batch_id = %(provider_batch_id)s AND status = 'succeeded' AND batch_api
       AND force_tier IS NULL
     ORDER BY id
"""
RESERVE = """
    INSERT INTO shadow_verdicts (job_id, cheaper_tier, dearer_tier, judge_model, reserved_usd,
                                 batch_stage, budget_hold_id)
    VALUES (%(id)s, %(cheaper)s, %(dearer)s, %(judge)s, %(usd)s, 'shadow', %(hold)s)
    ON CONFLICT (job_id) DO NOTHING
"""
# The next tierroute batch with requests of this stage to submit, unless another
# poller holds them.
NEXT_WAITING = """
    SELECT j.batch_id FROM shadow_verdicts v JOIN jobs j ON j.id = v.job_id
     WHERE v.batch_stage = %(stage)s AND v.provider_batch_id IS NULL AND v.as_good IS NULL
     ORDER BY v.created_at, v.job_id
     LIMIT 1
       FOR UPDATE OF v SKIP LOCKED
"""
WAITING = """
    SELECT v.job_id, v.shadow_text, v.create_sent_at
      FROM shadow_verdicts v JOIN jobs j ON j.id = v.job_id
     WHERE j.batch_id = %(batch_id)s AND v.batch_stage = %(stage)s
       AND v.provider_batch_id IS NULL AND v.as_good IS NULL
     ORDER BY v.created_at, v.job_id
     LIMIT %(limit)s
       FOR UPDATE OF v SKIP LOCKED
"""


@dataclass(frozen=True)
class Waiting:
    """A shadow or judge request waiting for its Message Batch (WAITING's columns)."""

    job_id: uuid.UUID
    shadow_text: str | None
    create_sent_at: datetime | None  # a create that went unanswered


INSERT_PROVIDER_BATCH = """
    INSERT INTO provider_batches (batch_id, tier, purpose, anthropic_batch_id, processing_status,
                                  request_count, processing, succeeded, errored, canceled,
                                  expired, created_at, expires_at)
    VALUES (%(batch_id)s, %(tier)s, %(purpose)s, %(anthropic_batch_id)s, %(status)s,
            %(count)s, %(processing)s, %(succeeded)s, %(errored)s, %(canceled)s, %(expired)s,
            %(created_at)s, %(expires_at)s)
    RETURNING id
"""
SUBMITTED = """
    UPDATE shadow_verdicts SET provider_batch_id = %(provider_batch_id)s, create_sent_at = NULL
     WHERE job_id = ANY(%(ids)s) AND batch_stage = %(stage)s AND provider_batch_id IS NULL
"""
NOTE_UNANSWERED = """
    UPDATE shadow_verdicts SET create_sent_at = %(sent_at)s
     WHERE job_id = ANY(%(ids)s) AND provider_batch_id IS NULL
"""


def reserve_chosen(rt: Runtime, cur: Cursor, provider_batch_id: int) -> int:
    """Claim the chosen jobs a Message Batch has just answered; how many were claimed.

    Runs in the poll's transaction that stored the answers, so a job answered is
    claimed or not in one commit. Their completion spend counts towards the cap.
    """
    rate = rt.settings.shadow_rate
    if rate <= 0:
        return 0
    cur.execute(ANSWERED_IN, {"provider_batch_id": provider_batch_id})
    ids = [row[0] for row in cur.fetchall() if chosen(row[0], rate)]
    if not ids:
        return 0
    cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", CAP_LOCK)
    room = learning_room(rt, cur)
    claimed = 0
    for job_id in ids:
        job = load_job(rt, cur, job_id, batch_api=True)
        if job is None:
            continue
        worst = BATCH_RATE * job.worst_case_usd()
        if worst > room:
            log.info(
                "shadow: job %s left out: %s would pass the cap (room %s)", job_id, worst, room
            )
            continue
        try:
            hold = rt.budgets.hold(cur, job.api_key_id, worst, BATCH_PENDING_TTL_S)
        except BudgetExceeded as exc:
            log.info("shadow: job %s left out by budget: %s", job_id, exc.detail)
            continue
        cur.execute(RESERVE, _reservation(job, worst, hold))
        if cur.rowcount == 0:
            budgets.release(cur, hold)
            continue
        room -= worst
        claimed += 1
    return claimed


def _reservation(job: ShadowJob, worst: Decimal, hold: int | None) -> dict[str, Any]:
    dearer = job.tier if job.shadow.name == job.cheaper.name else job.shadow
    return {
        "id": job.job_id,
        "cheaper": job.cheaper.name,
        "dearer": dearer.name,
        "judge": job.judge.model,
        "usd": worst,
        "hold": hold,
    }


def submit_waiting(rt: Runtime) -> int:
    """Put every waiting shadow and judge request in a Message Batch; how many were made."""
    created = 0
    for stage in STAGES:
        while (made := _submit_one(rt, stage)) is not None:
            created += made
    return created


def _submit_one(rt: Runtime, stage: str) -> int | None:
    """One Message Batch of a stage's waiting requests: 1 made, 0 refused, None: none to make."""
    settings = rt.settings
    with raw_transaction() as cur:
        cur.execute(NEXT_WAITING, {"stage": stage})
        row = cur.fetchone()
        if row is None:
            return None
        batch_id = row[0]
        params = {"batch_id": batch_id, "stage": stage, "limit": settings.batch_api_max_requests}
        waiting = fetch_all_as(cur, Waiting, WAITING, params)
        sent = [w.create_sent_at for w in waiting if w.create_sent_at is not None]
        unanswered = max(sent, default=None)
        if unanswered is not None:
            # An unanswered create's chunk is tried again as it was, so that an
            # accepted batch of it is recognised by its custom_ids.
            waiting = [w for w in waiting if w.create_sent_at == unanswered]
        by_tier: dict[str, list[dict[str, Any]]] = {}
        for w in waiting:
            job = load_job(rt, cur, w.job_id, batch_api=True, claimed=True)
            if job is None:
                drop(cur, w.job_id)
                continue
            tier, request = _request(job, stage, w.shadow_text)
            by_tier.setdefault(tier, []).append({"custom_id": str(w.job_id), "params": request})
        if not by_tier:
            return 0
        tier_name, requests = next(iter(by_tier.items()))
        chunk = next(split(requests, settings.batch_api_max_requests, settings.batch_api_max_bytes))
        ids = [uuid.UUID(request["custom_id"]) for request in chunk]
        batch = _create(rt, cur, ids, chunk, unanswered)
        if batch is None:
            return None  # the next tick tries again
        if isinstance(batch, str):
            for job_id in ids:
                drop(cur, job_id)
            log.warning("shadow: %d %s requests refused: %s", len(ids), stage, batch)
            return 0
        cur.execute(INSERT_PROVIDER_BATCH, _provider_row(batch_id, tier_name, stage, batch))
        (provider_batch_id,) = one_row(cur)
        cur.execute(SUBMITTED, {"provider_batch_id": provider_batch_id, "ids": ids, "stage": stage})
    log.info("shadow: %d %s requests in Message Batch %s", len(ids), stage, batch.id)
    return 1


def _request(job: ShadowJob, stage: str, shadow_text: str | None) -> tuple[str, dict[str, Any]]:
    """(tier, params) of a job's request at `stage`, as the live call would send it."""
    if stage == CallPurpose.SHADOW.value:
        return job.shadow.name, wire_body(job.shadow_params)
    return job.judge.name, wire_body(job.judge_params(shadow_text or ""))


def _create(
    rt: Runtime,
    cur: Cursor,
    ids: list[uuid.UUID],
    chunk: list[dict[str, Any]],
    unanswered_at: datetime | None,
) -> MessageBatch | str | None:
    """The Message Batch for `chunk`: found or created; a str: refused; None: try later."""
    if unanswered_at is not None:
        try:
            earlier = adopt.find_accepted(rt.client, cur, unanswered_at, ids)
        except RetryableProviderError as exc:
            log.warning("shadow: looking for an earlier Message Batch failed: %s", exc)
            return None
        except PermanentProviderError as exc:
            log.error("shadow: cannot look for an earlier Message Batch: %s", exc)
            earlier = adopt.Search()
        if earlier.wait:
            return None
        if earlier.batch is not None:
            return earlier.batch
    sent_at = datetime.now(UTC)
    try:
        return sdk.create(rt.client, chunk)
    except RetryableProviderError as exc:
        log.warning("shadow: creating a Message Batch failed: %s", exc)
        # Accepted or not, we cannot tell: the next try looks for it first.
        cur.execute(NOTE_UNANSWERED, {"ids": ids, "sent_at": sent_at})
        return None
    except PermanentProviderError as exc:
        return f"Message Batch refused: {exc.detail}"


def _provider_row(batch_id: uuid.UUID, tier: str, stage: str, batch: Any) -> dict[str, Any]:
    counts = batch.request_counts
    return {
        "processing": counts.processing,
        "succeeded": counts.succeeded,
        "errored": counts.errored,
        "canceled": counts.canceled,
        "expired": counts.expired,
        "batch_id": batch_id,
        "tier": tier,
        "purpose": stage,
        "anthropic_batch_id": batch.id,
        "status": batch.processing_status,
        "count": adopt.request_total(batch),
        "created_at": batch.created_at,
        "expires_at": batch.expires_at,
    }
