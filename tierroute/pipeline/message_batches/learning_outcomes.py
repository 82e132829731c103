"""Shadow and judge Message Batch results: each to its pending `shadow_verdicts` row.

Applied in the poll's transaction (poll.py). A result moves its row only if the row
is still pending at that stage in that Message Batch, so results applied twice (a
poller that died mid-way, two pollers) bill nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from anthropic.types.messages import MessageBatchIndividualResponse

from tierroute.domain.cost import BATCH_RATE
from tierroute.domain.decisions import CallRecord
from tierroute.domain.status import CallPurpose
from tierroute.llm.provider import message_text
from tierroute.pipeline import budgets
from tierroute.pipeline.budget_costs import params_ceiling
from tierroute.pipeline.context import Runtime
from tierroute.pipeline.message_batches import sdk
from tierroute.pipeline.shadow import load_job, verdict_of
from tierroute.store import leases
from tierroute.store.engine import Cursor

log = logging.getLogger(__name__)

Bill = Callable[[MessageBatchIndividualResponse, CallPurpose], CallRecord]

# The row a result belongs to: pending, at this stage, in this Message Batch.
PENDING_IN = """
    SELECT budget_hold_id FROM shadow_verdicts
     WHERE job_id = %(id)s AND provider_batch_id = %(provider_batch_id)s
       AND batch_stage = %(stage)s AND as_good IS NULL
       FOR UPDATE
"""
TO_JUDGE = """
    UPDATE shadow_verdicts
       SET batch_stage = 'judge', provider_batch_id = NULL, shadow_text = %(text)s,
           reserved_usd = %(usd)s
     WHERE job_id = %(id)s
"""
HOLD_USD = "UPDATE budget_holds SET usd = %(usd)s WHERE id = %(id)s"
VERDICT = """
    UPDATE shadow_verdicts
       SET as_good = %(as_good)s, reasoning = %(reasoning)s, reserved_usd = NULL,
           shadow_text = NULL, budget_hold_id = NULL, judged_at = now()
     WHERE job_id = %(id)s
"""
DROP = """
    DELETE FROM shadow_verdicts WHERE job_id = %(id)s AND as_good IS NULL
    RETURNING budget_hold_id
"""
UNANSWERED_IN = """
    SELECT job_id FROM shadow_verdicts
     WHERE provider_batch_id = %(provider_batch_id)s AND batch_stage = %(stage)s
       AND as_good IS NULL
"""


def apply_results(
    rt: Runtime, cur: Cursor, provider_batch_id: int, stage: str, anthropic_id: str, bill: Bill
) -> tuple[int, int]:
    """Map an ended shadow or judge Message Batch's results back; (succeeded, failed)."""
    purpose = CallPurpose(stage)
    succeeded = failed = 0
    for response in sdk.results(rt.client, anthropic_id):
        try:
            job_id = uuid.UUID(response.custom_id)
        except ValueError:
            log.warning("Message Batch %s: unknown custom_id %r", anthropic_id, response.custom_id)
            continue
        key = {"id": job_id, "provider_batch_id": provider_batch_id, "stage": stage}
        cur.execute(PENDING_IN, key)
        row = cur.fetchone()
        if row is None:
            continue  # applied already, or dropped
        result = response.result
        if result.type != "succeeded":
            log.info("shadow: job %s: %s request %s", job_id, stage, result.type)
            drop(cur, job_id)
            failed += 1
            continue
        leases.insert_call(cur, bill(response, purpose), job_id)
        # Postgres refuses NUL in text; the answer is read by the judge, not stored whole.
        text = message_text(result.message).replace("\x00", "")
        if purpose is CallPurpose.SHADOW:
            moved = _to_judge(rt, cur, job_id, row[0], text)
        else:
            moved = _judged(cur, job_id, row[0], verdict_of(text, result.message.stop_reason))
        succeeded += int(moved)
        failed += int(not moved)
    cur.execute(UNANSWERED_IN, {"provider_batch_id": provider_batch_id, "stage": stage})
    for (job_id,) in cur.fetchall():
        drop(cur, job_id)
        failed += 1
    return succeeded, failed


def _to_judge(rt: Runtime, cur: Cursor, job_id: uuid.UUID, hold: int | None, text: str) -> bool:
    """The shadow answer is in: wait for the judge, reserving its worst case alone."""
    job = load_job(rt, cur, job_id, batch_api=True, claimed=True)
    if job is None:
        drop(cur, job_id)
        return False
    worst = BATCH_RATE * params_ceiling(job.judge, job.judge_params(text))
    cur.execute(TO_JUDGE, {"id": job_id, "text": text, "usd": worst})
    if hold is not None:
        cur.execute(HOLD_USD, {"id": hold, "usd": worst})
    return True


def _judged(
    cur: Cursor, job_id: uuid.UUID, hold: int | None, verdict: tuple[bool, str] | None
) -> bool:
    if verdict is None:
        drop(cur, job_id)
        return False
    as_good, reasoning = verdict
    reasoning = reasoning.replace("\x00", "")
    cur.execute(VERDICT, {"id": job_id, "as_good": as_good, "reasoning": reasoning})
    budgets.release(cur, hold)
    return True


def drop(cur: Cursor, job_id: uuid.UUID) -> None:
    """A judgement that cannot finish: its pending row goes, and its budget hold."""
    cur.execute(DROP, {"id": job_id})
    row = cur.fetchone()
    if row is not None:
        budgets.release(cur, row[0])
