"""Re-sending what the broker lost: Postgres knows every unfinished job and its step.

Redis keeps queues in memory; our Redis runs without persistence, so a restart (or
a flush) loses every message, those workers had taken but not acknowledged
included. Each job is still in Postgres, in the state that says which message it
needs: `queued` (classify, through the feeder), `classifying` (classify), and
`routed` or `running` (complete on the tier's queue).

The broker says it lost its data by losing a marker key that the watch sets. The
watch sets the marker first and re-sends second: whatever the broker loses after
the marker was set, it loses the marker with it, and the watch sends again.
Duplicates cost nothing, since every step claims its job before doing anything.

A broker can also lose messages and keep its marker (an AOF Redis that lost its
last writes, a RabbitMQ that dropped them). So on every broker two watches also
look for jobs left untouched past the stale time (Settings.stale_s): unrouted
ones (StrandedJobWatch) and routed ones (StaleRouteWatch), and send them again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tierroute.domain.status import JobStatus
from tierroute.store.engine import raw_transaction

log = logging.getLogger(__name__)

SendClassify = Callable[[Sequence[uuid.UUID]], None]
SendComplete = Callable[[Sequence[tuple[uuid.UUID, str]]], None]

# Back to the feeder: it sends them again, metered by the classify queue's depth.
UNSEND_QUEUED = """
    UPDATE jobs SET enqueued_at = NULL
     WHERE status = 'queued' AND enqueued_at IS NOT NULL
"""
# Mid-way jobs; a leased one's duplicate waits for the lease (steps._held).
IN_FLIGHT = """
    SELECT id, status, tier FROM jobs WHERE status IN ('classifying', 'routed', 'running')
     ORDER BY created_at
"""
SEND_CHUNK = 1000


@dataclass(frozen=True)
class Resent:
    """What a recovery sent again."""

    queued: int  # handed back to the feeder
    classify: int
    complete: int


def resend_unfinished(send_classify: SendClassify, send_complete: SendComplete) -> Resent:
    """Give every unfinished job the message its state needs."""
    with raw_transaction() as cur:
        cur.execute(UNSEND_QUEUED)
        queued = cur.rowcount
        cur.execute(IN_FLIGHT)
        rows = cur.fetchall()
    classify = [job_id for job_id, status, _ in rows if status == JobStatus.CLASSIFYING]
    complete = [
        (job_id, str(tier)) for job_id, status, tier in rows if status != JobStatus.CLASSIFYING
    ]
    for start in range(0, len(classify), SEND_CHUNK):
        send_classify(classify[start : start + SEND_CHUNK])
    for start in range(0, len(complete), SEND_CHUNK):
        send_complete(complete[start : start + SEND_CHUNK])
    return Resent(queued=queued, classify=len(classify), complete=len(complete))


class BrokerMemory(Protocol):
    """A marker in the broker that disappears when the broker loses its messages."""

    def intact(self) -> bool:
        """Whether the marker is still there."""

    def mark(self) -> None:
        """Set the marker."""


@dataclass
class LostMessageWatch:
    """Checks the broker's marker now and then; re-sends every unfinished job when it is gone."""

    memory: BrokerMemory
    send_classify: SendClassify
    send_complete: SendComplete
    interval_s: float = 1.0
    _next_check: float = field(default=0.0, repr=False)
    _pending: bool = field(default=False, repr=False)

    def check(self) -> Resent | None:
        """Recover if the broker forgot; errors propagate, and the next check tries again."""
        now = time.monotonic()
        if not self._pending and now < self._next_check:
            return None
        self._next_check = now + self.interval_s
        if not self._pending and self.memory.intact():
            return None
        self._pending = True  # until a resend succeeds, whatever the marker says
        self.memory.mark()
        resent = resend_unfinished(self.send_classify, self.send_complete)
        self._pending = False
        # On a fresh broker (first start) there is usually nothing to send.
        anything = resent.queued or resent.classify or resent.complete
        level = logging.WARNING if anything else logging.INFO
        log.log(
            level,
            "the broker had no marker (restarted without persistence?); sent again: "
            "%d queued, %d classify, %d complete",
            resent.queued,
            resent.classify,
            resent.complete,
        )
        return resent


# Routed jobs no tier worker has started for longer than the broker's visibility
# timeout. By then a dead worker's unacknowledged messages are back in their
# queues, so such a job has most likely lost its message: kombu's Redis transport
# pops a message before it records it as unacknowledged, and a worker killed in
# between takes it along. A job merely waiting in a very deep queue gets a
# duplicate, which its claim skips. Likewise a running job whose lease ran out
# that long ago: its task ended without finishing it (an error no retry covered)
# and its message is gone; a claim takes a job whose lease has run out. And a
# running job released for a retry (no lease) that long ago: a task publishes that
# retry itself, and a publish that failed while the broker was down left the job
# with no message at all.
STALE_ROUTED = """
    SELECT id, tier FROM jobs
     WHERE tier IS NOT NULL AND NOT batch_api
       AND ((status = 'routed'
             AND classified_at < now() - make_interval(secs => %(after_s)s)
             AND (lease_expires_at IS NULL OR lease_expires_at < now()))
            OR (status = 'running'
                -- no lease: released for a retry whose message may never have been
                -- sent (the broker was down when the task published it)
                AND coalesce(lease_expires_at, updated_at)
                    < now() - make_interval(secs => %(after_s)s)))
     ORDER BY classified_at
     LIMIT 1000
"""


@dataclass
class StaleRouteWatch:
    """Now and then, sends `complete` again for jobs unstarted, or abandoned, for `after_s`."""

    send_complete: SendComplete
    after_s: float
    interval_s: float = 5.0
    _next_check: float = field(default=0.0, repr=False)
    # job -> when we last sent it again; each is sent again at most once per after_s.
    _sent: dict[uuid.UUID, float] = field(default_factory=dict, repr=False)

    def check(self) -> int:
        """How many jobs were sent again; errors propagate, and the next check tries again."""
        now = time.monotonic()
        if now < self._next_check:
            return 0
        self._next_check = now + self.interval_s
        with raw_transaction() as cur:
            cur.execute(STALE_ROUTED, {"after_s": self.after_s})
            rows = cur.fetchall()
        due = [
            (job_id, str(tier))
            for job_id, tier in rows
            if now - self._sent.get(job_id, -self.after_s) >= self.after_s
        ]
        if due:
            self.send_complete(due)
            log.warning(
                "sent complete again for %d jobs unstarted, or abandoned, for %.0fs",
                len(due),
                self.after_s,
            )
        self._sent = {j: t for j, t in self._sent.items() if now - t < 2 * self.after_s}
        self._sent.update((job_id, now) for job_id, _ in due)
        return len(due)


# Jobs whose classify message is lost while the broker kept its marker (a Redis with
# AOF that lost its last writes, a RabbitMQ that dropped a message): the marker says
# nothing was lost, and before this watch nothing else looked at unrouted jobs.
# Queued jobs sent that long ago go back to the feeder, which sends them again
# (metered by the queue's depth, and stamping `enqueued_at` anew, so each is sent
# again at most once per `after_s`). The classify claim takes a job that is queued,
# or classifying with its lease run out, so a duplicate does no harm.
UNSEND_STALE_QUEUED = """
    UPDATE jobs SET enqueued_at = NULL
     WHERE status = 'queued' AND enqueued_at < now() - make_interval(secs => %(after_s)s)
"""
# Classifying jobs untouched that long, their lease (if any) run out: a classifier
# that died mid-call, or a rate-limited classify whose retry was lost.
STALE_UNROUTED = """
    SELECT id FROM jobs
     WHERE status = 'classifying'
       AND (lease_expires_at IS NULL OR lease_expires_at < now())
       AND updated_at < now() - make_interval(secs => %(after_s)s)
     ORDER BY updated_at
     LIMIT 1000
"""


@dataclass(frozen=True)
class Stranded:
    """What a stranded-job check sent again."""

    queued: int  # handed back to the feeder
    classify: int


@dataclass
class StrandedJobWatch:
    """Now and then, sends unrouted jobs whose classify message is gone for `after_s` again."""

    send_classify: SendClassify
    after_s: float
    interval_s: float = 5.0
    _next_check: float = field(default=0.0, repr=False)
    # job -> when we last sent it again; each is sent again at most once per after_s.
    _sent: dict[uuid.UUID, float] = field(default_factory=dict, repr=False)

    def check(self) -> Stranded | None:
        """What was sent again (None: not time yet); errors propagate, the next check retries."""
        now = time.monotonic()
        if now < self._next_check:
            return None
        self._next_check = now + self.interval_s
        with raw_transaction() as cur:
            cur.execute(UNSEND_STALE_QUEUED, {"after_s": self.after_s})
            queued = cur.rowcount
            cur.execute(STALE_UNROUTED, {"after_s": self.after_s})
            rows = cur.fetchall()
        due = [
            job_id
            for (job_id,) in rows
            if now - self._sent.get(job_id, -self.after_s) >= self.after_s
        ]
        for start in range(0, len(due), SEND_CHUNK):
            self.send_classify(due[start : start + SEND_CHUNK])
        if queued or due:
            log.warning(
                "sent again jobs stranded for %.0fs without their classify message: "
                "%d queued (back to the feeder), %d classifying",
                self.after_s,
                queued,
                len(due),
            )
        self._sent = {j: t for j, t in self._sent.items() if now - t < 2 * self.after_s}
        self._sent.update((job_id, now) for job_id in due)
        return Stranded(queued=queued, classify=len(due))
