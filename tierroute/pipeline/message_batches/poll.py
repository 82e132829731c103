"""Polling: each unfinished Message Batch is retrieved, cancelled if asked, and once it
has ended its results are mapped back to the jobs by custom_id.

A Message Batch is worked on under `FOR UPDATE SKIP LOCKED` on its row, in one
transaction with everything its results change: a second poller skips it, and a
poller that dies mid-way leaves nothing half-applied.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse

from tierroute.domain.cost import BATCH_RATE, TokenCounts, cache_savings_usd, cost_usd
from tierroute.domain.decisions import CallRecord
from tierroute.domain.errors import ProviderError
from tierroute.domain.status import CallPurpose
from tierroute.llm.provider import message_text
from tierroute.pipeline.context import Runtime
from tierroute.pipeline.message_batches import learning, learning_outcomes, sdk
from tierroute.pipeline.message_batches.outcomes import (
    Policy,
    settle_failed,
    settle_missing,
    succeed,
)
from tierroute.store.engine import Cursor, fetch_one_as, raw_transaction

log = logging.getLogger(__name__)

# The next Message Batch whose results are not mapped back yet, unless another poller
# holds it or it was looked at within the last half poll interval (two beats).
NEXT_BATCH = """
    SELECT id, tier, anthropic_batch_id, cancel_requested_at IS NOT NULL AS cancel_requested,
           created_at, purpose
      FROM provider_batches
     WHERE results_processed_at IS NULL AND id > %(after)s
       AND (last_polled_at IS NULL
            OR last_polled_at < now() - make_interval(secs => %(min_gap_s)s))
     ORDER BY id
     LIMIT 1
       FOR UPDATE SKIP LOCKED
"""
UPDATE_STATE = """
    UPDATE provider_batches
       SET processing_status = %(status)s, processing = %(processing)s,
           succeeded = %(succeeded)s, errored = %(errored)s, canceled = %(canceled)s,
           expired = %(expired)s, ended_at = %(ended_at)s, last_polled_at = now()
     WHERE id = %(id)s
"""
PROCESSED = "UPDATE provider_batches SET results_processed_at = now() WHERE id = %(id)s"


@dataclass(frozen=True)
class NextBatch:
    """A Message Batch to poll (NEXT_BATCH's columns)."""

    id: int
    tier: str
    anthropic_batch_id: str
    cancel_requested: bool
    created_at: datetime
    purpose: str


@dataclass(frozen=True)
class Applied:
    """What one Message Batch's results did to its jobs."""

    succeeded: int = 0
    failed: int = 0  # errored, expired or cancelled: per the failure policy


def poll_batches(rt: Runtime) -> tuple[int, int]:
    """Look at every unfinished Message Batch once; (looked at, whose results were applied)."""
    after, looked, applied = 0, 0, 0
    while True:
        try:
            outcome = _poll_next(rt, after)
        except _PollFailed as failed:
            # Rolled back, lock released: the next tick tries this one again.
            log.warning("Message Batch poll failed: %s", failed.error.detail)
            after = failed.provider_batch_id
            continue
        if outcome is None:
            return looked, applied
        after, done = outcome
        looked += 1
        applied += int(done)


class _PollFailed(Exception):
    def __init__(self, provider_batch_id: int, error: ProviderError) -> None:
        super().__init__(error.detail)
        self.provider_batch_id = provider_batch_id
        self.error = error


def _poll_next(rt: Runtime, after: int) -> tuple[int, bool] | None:
    gap = rt.settings.batch_api_poll_s / 2
    with raw_transaction() as cur:
        polled = fetch_one_as(cur, NextBatch, NEXT_BATCH, {"after": after, "min_gap_s": gap})
        if polled is None:
            return None
        provider_batch_id, anthropic_id = polled.id, polled.anthropic_batch_id
        tier, created_at, purpose = polled.tier, polled.created_at, polled.purpose
        cancel_requested = polled.cancel_requested
        try:
            batch = sdk.retrieve(rt.client, anthropic_id)
            if cancel_requested and batch.processing_status == "in_progress":
                batch = sdk.cancel(rt.client, anthropic_id)
                log.info("Message Batch %s: cancel requested", anthropic_id)
            _store_state(cur, provider_batch_id, batch)
            if batch.processing_status != "ended":
                return provider_batch_id, False
            if purpose == CallPurpose.COMPLETE.value:
                applied = _apply_results(
                    rt, cur, provider_batch_id, tier, anthropic_id, created_at, cancel_requested
                )
                learning.reserve_chosen(rt, cur, provider_batch_id)
            else:
                applied = _apply_learning(
                    rt, cur, provider_batch_id, tier, anthropic_id, created_at, purpose
                )
        except ProviderError as exc:
            raise _PollFailed(provider_batch_id, exc) from exc
        cur.execute(PROCESSED, {"id": provider_batch_id})
    log.info(
        "Message Batch %s ended: %d succeeded, %d errored/expired/cancelled",
        anthropic_id,
        applied.succeeded,
        applied.failed,
    )
    return provider_batch_id, True


def _store_state(cur: Cursor, provider_batch_id: int, batch: MessageBatch) -> None:
    counts = batch.request_counts
    cur.execute(
        UPDATE_STATE,
        {
            "id": provider_batch_id,
            "status": batch.processing_status,
            "processing": counts.processing,
            "succeeded": counts.succeeded,
            "errored": counts.errored,
            "canceled": counts.canceled,
            "expired": counts.expired,
            "ended_at": batch.ended_at,
        },
    )


def _apply_results(
    rt: Runtime,
    cur: Cursor,
    provider_batch_id: int,
    tier_name: str,
    anthropic_id: str,
    created_at: datetime,
    cancel_requested: bool,
) -> Applied:
    policy: Policy = rt.settings.batch_api_failure_policy
    latency_ms = max(0, round((datetime.now(UTC) - created_at).total_seconds() * 1000))
    succeeded = failed = 0
    for response in sdk.results(rt.client, anthropic_id):
        try:
            job_id = uuid.UUID(response.custom_id)
        except ValueError:
            log.warning("Message Batch %s: unknown custom_id %r", anthropic_id, response.custom_id)
            continue
        result = response.result
        if result.type == "succeeded":
            record = _call_record(rt, tier_name, anthropic_id, response, latency_ms)
            text = message_text(result.message)
            succeeded += succeed(cur, job_id, provider_batch_id, text, record)
            continue
        reason = _failure_reason(response)
        cancelled = result.type == "canceled" and cancel_requested
        settle_failed(cur, job_id, provider_batch_id, reason, policy, cancelled=cancelled)
        failed += 1
    failed += settle_missing(cur, provider_batch_id, policy)
    return Applied(succeeded=succeeded, failed=failed)


def _apply_learning(
    rt: Runtime,
    cur: Cursor,
    provider_batch_id: int,
    tier: str,
    anthropic_id: str,
    created_at: datetime,
    purpose: str,
) -> Applied:
    """A shadow or judge Message Batch's results: to shadow_verdicts, not to jobs."""
    latency_ms = max(0, round((datetime.now(UTC) - created_at).total_seconds() * 1000))

    def bill(response: MessageBatchIndividualResponse, call: CallPurpose) -> CallRecord:
        return _call_record(rt, tier, anthropic_id, response, latency_ms, call)

    succeeded, failed = learning_outcomes.apply_results(
        rt, cur, provider_batch_id, purpose, anthropic_id, bill
    )
    return Applied(succeeded=succeeded, failed=failed)


def _failure_reason(response: MessageBatchIndividualResponse) -> str:
    result = response.result
    if result.type == "errored":
        error = result.error.error
        return f"errored: {error.type}: {error.message}"
    return f"request {result.type}"  # expired, canceled


def _call_record(
    rt: Runtime,
    tier_name: str,
    anthropic_id: str,
    response: MessageBatchIndividualResponse,
    latency_ms: int,
    purpose: CallPurpose = CallPurpose.COMPLETE,
) -> CallRecord:
    """The billed call, at the batch rate; the all-Opus baseline too.

    The baseline is at the batch rate as well, so saved_usd is the saving of routing
    alone (docs/batch-mode-and-caching.md). Learning calls (shadow, judge) have none:
    the all-Opus baseline never pays for them.
    """
    assert response.result.type == "succeeded"
    message = response.result.message
    tier = rt.tiers.by_model(message.model) or rt.tiers.get(tier_name)
    tokens = TokenCounts.from_usage(message.usage)
    if_opus = cost_usd(tokens, rt.tiers.top) if purpose is CallPurpose.COMPLETE else Decimal(0)
    return CallRecord(
        purpose=purpose,
        model=message.model or tier.model,
        tier=tier.name,
        tokens=tokens,
        cost_usd=BATCH_RATE * cost_usd(tokens, tier),
        cost_if_opus_usd=BATCH_RATE * if_opus,
        latency_ms=latency_ms,
        request_id=f"{anthropic_id}:{response.custom_id}",
        stop_reason=message.stop_reason,
        simulated=rt.settings.simulated,
        batch_api=True,
        cache_savings_usd=BATCH_RATE * cache_savings_usd(tokens, tier),
    )
