"""Routing a chunk of queued jobs at once: what the feeder's classify messages carry.

An in-process classifier decides a job in tens of microseconds, so at hundreds of
jobs a second the cost of classifying is one Celery message, one transaction and
one enqueue per job. A feeder message therefore carries a chunk of job ids, and
the chunk is routed with one read, the decisions, and one statement that routes
every still-queued job and stores its decision.

Jobs that are not plainly queued (a redelivered or re-driven job, one another
worker holds), and every job while a budget applies, take the one-job path
(`steps.classify_job`), which owns those cases.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from tierroute.domain.decisions import RoutingDecision
from tierroute.domain.status import JobStatus
from tierroute.pipeline.context import Runtime
from tierroute.pipeline.conversation import sticky_floors
from tierroute.pipeline.steps import RetryLater, classify_job, decide
from tierroute.store import leases, transitions
from tierroute.store.engine import Cursor, raw_autocommit

log = logging.getLogger(__name__)


@dataclass
class BatchRouting:
    """Where each job of a chunk goes next."""

    # (job, tier queue) to enqueue `tierroute.complete` for.
    hand_on: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    # (job, delay in s) to classify again with a message of its own.
    on_their_own: list[tuple[uuid.UUID, float]] = field(default_factory=list)


def classify_batch(rt: Runtime, job_ids: Sequence[uuid.UUID]) -> BatchRouting:
    """Route a chunk of jobs; the caller enqueues what the result names, after this returns."""
    ids = list(dict.fromkeys(job_ids))  # a duplicate id would store two decisions
    routing = BatchRouting()
    if not rt.classifier.in_process:
        # A classifier that calls a model is run one job per message, concurrently.
        routing.on_their_own.extend((job_id, 0.0) for job_id in ids)
        return routing
    with raw_autocommit() as cur:
        # Budget checks take a lock per job: while any budget applies, the one-job path.
        applies = rt.budgets.applies(cur)
        one_by_one = ids if applies else _route_queued(rt, cur, ids, routing)
    for job_id in one_by_one:
        outcome = classify_job(rt, job_id)
        if isinstance(outcome, RetryLater):
            routing.on_their_own.append((job_id, outcome.delay_s))
        elif outcome is not None:
            routing.hand_on.append((job_id, outcome))
    return routing


def _route_queued(
    rt: Runtime, cur: Cursor, ids: list[uuid.UUID], routing: BatchRouting
) -> list[uuid.UUID]:
    """Route the chunk's plainly queued jobs; returns the ids the one-job path must take."""
    rows = {row.id: row for row in leases.read_for_classify(cur, ids)}
    floors = sticky_floors(rt.tiers, cur, ids)
    decisions: list[tuple[uuid.UUID, RoutingDecision]] = []
    batch_api: set[uuid.UUID] = set()
    one_by_one = []
    for job_id in ids:
        row = rows.get(job_id)
        if row is None or row.status != JobStatus.QUEUED or row.tier is not None:
            one_by_one.append(job_id)  # missing, re-driven, held or moved on
            continue
        try:
            decision = decide(rt, row.prompt, row.system, row.force_tier, floors.get(job_id))
        except Exception:
            # One bad prompt must not fail its chunk: alone, its task fails by itself.
            log.exception("classify: job %s could not be routed in its chunk", job_id)
            routing.on_their_own.append((job_id, 0.0))
            continue
        decisions.append((job_id, decision))
        if row.batch_api:
            batch_api.add(job_id)
    routed = transitions.route_queued(cur, decisions)
    for job_id, decision in decisions:
        # A job not routed was cancelled, or routed by a duplicate message, since the
        # read; a batch-mode job waits for its Message Batch (tierroute/pipeline/message_batches).
        if job_id in routed and job_id not in batch_api:
            routing.hand_on.append((job_id, decision.tier))
    return one_by_one
