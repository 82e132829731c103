"""One poll: submit the batches that are ready and the shadow judging waiting in batch mode,
then look at every unfinished Message Batch.

Safe to run anywhere, any number of times at once (it is idempotent, and its row
locks are FOR UPDATE SKIP LOCKED); the classify workers' beat runs it every
TIERROUTE_BATCH_API_POLL_S seconds (worker/batch_tasks.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tierroute.pipeline.context import Runtime
from tierroute.pipeline.message_batches.learning import submit_waiting
from tierroute.pipeline.message_batches.poll import poll_batches
from tierroute.pipeline.message_batches.submit import ready_batches, submit_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollReport:
    """What one poll did."""

    submitted: int  # Message Batches created
    polled: int  # Message Batches looked at
    ended: int  # Message Batches whose results were mapped back
    learning: int = 0  # Message Batches of shadow and judge requests created


def poll_once(rt: Runtime) -> PollReport:
    """Submit what is ready, poll what is running, apply what has ended."""
    submitted = sum(submit_batch(rt, batch_id) for batch_id in ready_batches(rt))
    learning = submit_waiting(rt)
    polled, ended = poll_batches(rt)
    if submitted or ended or learning:
        log.info(
            "batch poll: %d submitted (%d for shadow judging), %d polled, %d ended",
            submitted, learning, polled, ended,
        )  # fmt: skip
    return PollReport(submitted=submitted, polled=polled, ended=ended, learning=learning)
