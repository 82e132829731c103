"""The job state machine: the statuses a job goes through and the moves allowed between them.

    queued ─▶ classifying ─▶ routed ─▶ running ─▶ succeeded | failed | dead

The moves, each with what makes it:

- queued → classifying: a classify task claims the job, with a lease.
- queued → routed: a classify chunk routes plainly queued jobs in one statement,
  with no lease in between (tierroute/pipeline/classify_chunk.py).
- classifying → classifying: the classifier's lease ran out (its worker died
  mid-call) and another classify task takes the job over.
- classifying → routed: the tier is chosen (or a re-driven job keeps its tier);
  the job waits for its tier worker, or in batch_api mode for its Message Batch.
- classifying | routed → failed: no daily budget has room for it, before the
  classifier's call or once its tier is known; in batch_api mode, a Message Batch
  create refused outright, under the "fail" policy.
- routed → running: a tier worker claims it for its model call (with a lease and
  an attempt), or the batch poller hands it to a Message Batch.
- running → running: a lease that ran out (a worker died mid-call), or a job
  released for a retry after a transient error (lease dropped, status kept),
  is claimed again; a locally rate-limited claim hands its attempt back the same way.
- running → succeeded | failed: the answer is stored, or a permanent error (an
  answer Postgres refuses, a Message Batch request errored under "fail") fails it.
- running → dead: a transient error on the last allowed attempt.
- routed | running → queued: in batch_api mode, a Message Batch request that
  errored or expired (or a create refused) is re-run live under the "live" policy.
- queued | classifying | routed → cancelled: a batch's cancel, before any model call.
- running → cancelled: a Message Batch request cancelled because its batch was.
- failed | dead → queued: a retry of one job, or a batch's redrive.

Succeeded and cancelled are final. Every move is made by one module,
tierroute/store/transitions.py, whose statements are checked against MOVES.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum


class JobStatus(StrEnum):
    """Where a job is in its life (see the module docstring for the moves between them)."""

    QUEUED = "queued"
    CLASSIFYING = "classifying"
    # A tier is chosen; the job waits for its tier worker (or its Message Batch).
    ROUTED = "routed"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DEAD = "dead"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.DEAD})
# No model call made yet for the job's answer: a batch's cancel takes these.
NOT_STARTED = (JobStatus.QUEUED, JobStatus.CLASSIFYING, JobStatus.ROUTED)
# Between classification and an end: the jobs whose worst case a daily budget holds.
IN_FLIGHT = (JobStatus.CLASSIFYING, JobStatus.ROUTED, JobStatus.RUNNING)
# What a retry or a redrive takes back to queued.
REDRIVABLE = (JobStatus.FAILED, JobStatus.DEAD)

_S = JobStatus
# Each status and the statuses a job in it may move to; a status moving to itself
# is a new holder taking the job over (a lease that ran out, a retry's claim).
MOVES: Mapping[JobStatus, frozenset[JobStatus]] = {
    _S.QUEUED: frozenset({_S.CLASSIFYING, _S.ROUTED, _S.CANCELLED}),
    _S.CLASSIFYING: frozenset({_S.CLASSIFYING, _S.ROUTED, _S.FAILED, _S.CANCELLED}),
    _S.ROUTED: frozenset({_S.RUNNING, _S.FAILED, _S.QUEUED, _S.CANCELLED}),
    _S.RUNNING: frozenset({_S.RUNNING, _S.SUCCEEDED, _S.FAILED, _S.DEAD, _S.QUEUED, _S.CANCELLED}),
    _S.SUCCEEDED: frozenset(),
    _S.FAILED: frozenset({_S.QUEUED}),
    _S.CANCELLED: frozenset(),
    _S.DEAD: frozenset({_S.QUEUED}),
}


class IllegalMove(ValueError):
    """A status change the state machine does not allow."""


def may_move(source: JobStatus | str, target: JobStatus | str) -> bool:
    """Whether a job in `source` may move to `target`."""
    return JobStatus(target) in MOVES[JobStatus(source)]


def check_moves(sources: Iterable[JobStatus | str], targets: Iterable[JobStatus | str]) -> None:
    """Raise IllegalMove unless every source may move to every target."""
    targets = list(targets)
    illegal = [f"{s} → {t}" for s in sources for t in targets if not may_move(s, t)]
    if illegal:
        raise IllegalMove(f"not allowed by the job state machine: {', '.join(illegal)}")


class BatchMode(StrEnum):
    """How a batch's jobs are answered: live calls, or Anthropic's Message Batches (50 % off)."""

    LIVE = "live"
    BATCH_API = "batch_api"


class CallPurpose(StrEnum):
    """Why a model call was made: to route a job, to answer it, or to learn from it.

    A shadow call answers a finished job again on the neighbouring tier; a judge call
    compares the two answers (tierroute/pipeline/shadow.py). Both are learning cost.
    """

    CLASSIFY = "classify"
    COMPLETE = "complete"
    SHADOW = "shadow"
    JUDGE = "judge"
