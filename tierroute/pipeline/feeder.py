"""The feeder: moves committed, queued jobs into the classify queue, keeping it short.

It is a transactional outbox. Jobs are committed with `enqueued_at` NULL (a
100,000-row COPY does not wait for 100,000 broker publishes), and the feeder
sends them in chunks while the queue has room. Redis therefore holds a bounded
number of messages, and a job committed just before the API died is still sent.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import text

from tierroute.store.engine import session_scope

log = logging.getLogger(__name__)

# A round is a depth check, a claim and a publish: milliseconds, or seconds while the
# broker reconnects. One that runs this long is stuck on a call that does not
# return, and until it ends nothing is fed and nothing lost is re-sent.
STALL_REPORT_S = 60.0

SendMany = Callable[[Sequence[uuid.UUID]], None]
QueueDepth = Callable[[], int]

CLAIM_UNSENT = text(
    """
    UPDATE jobs SET enqueued_at = now()
     WHERE id IN (SELECT id FROM jobs
                   WHERE status = 'queued' AND enqueued_at IS NULL
                   ORDER BY created_at
                   LIMIT :limit
                   FOR UPDATE SKIP LOCKED)
    RETURNING id
    """
)


@dataclass
class Feeder:
    """Keeps up to `max_depth` classify messages queued, `chunk` at a time."""

    send_many: SendMany
    queue_depth: QueueDepth
    max_depth: int = 5000
    chunk: int = 250
    idle_sleep_s: float = 0.1
    # Runs before each round, e.g. a LostMessageWatch's check (tierroute/pipeline/recovery.py).
    before_round: Callable[[], object] | None = None
    # When the round under way began (time.monotonic()); None between rounds.
    round_began: float | None = field(default=None, repr=False)

    def feed_once(self) -> int:
        """Send one chunk if the queue has room; returns how many jobs were sent."""
        room = self.max_depth - self.queue_depth()
        if room <= 0:
            return 0
        with session_scope() as session:
            ids = list(session.scalars(CLAIM_UNSENT, {"limit": min(room, self.chunk)}))
            if ids:
                # Sent before the stamp commits: if the commit fails the feeder
                # sends these again, and tasks ignore a duplicate. The other order
                # could stamp a job whose message was never sent.
                self.send_many(ids)
        return len(ids)

    def run(self, stop: threading.Event) -> None:
        """Feed until `stop` is set; errors are logged and retried, never fatal."""
        log.info("feeder started (max depth %d, chunk %d)", self.max_depth, self.chunk)
        while not stop.is_set():
            self.round_began = time.monotonic()
            try:
                if self.before_round is not None:
                    self.before_round()
                sent = self.feed_once()
            except Exception:
                log.exception("feeder: sending failed; retrying in a second")
                stop.wait(1.0)
                continue
            finally:
                self.round_began = None
            if sent == 0:
                stop.wait(self.idle_sleep_s)


def report_stalls(
    feeder: Feeder,
    thread: threading.Thread,
    stop: threading.Event,
    after_s: float = STALL_REPORT_S,
    every_s: float = 5.0,
) -> None:
    """Log the feeder thread's stack, once per round, when a round runs past `after_s`."""
    reported: float | None = None
    while not stop.wait(every_s):
        began = feeder.round_began
        if began is None or began == reported or time.monotonic() - began < after_s:
            continue
        reported = began
        frame = sys._current_frames().get(thread.ident or -1)
        stack = "".join(traceback.format_stack(frame)) if frame else "(the thread is gone)\n"
        log.error(
            "feeder: one round has run for %.0fs; nothing is fed or re-sent until it ends. "
            "The feeder thread is at:\n%s",
            time.monotonic() - began,
            stack.rstrip(),
        )


def start_feeder_thread(feeder: Feeder) -> tuple[threading.Thread, threading.Event]:
    """Run `feeder` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=feeder.run, args=(stop,), name="tierroute-feeder", daemon=True)
    thread.start()
    reporter = threading.Thread(
        target=report_stalls, args=(feeder, thread, stop), name="tierroute-stalls", daemon=True
    )
    reporter.start()
    return thread, stop
