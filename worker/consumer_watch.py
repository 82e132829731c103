"""A watch on the worker's own consumer: messages waiting, room to take them, none taken.

kombu's Redis transport has a history of consumers that reconnect after a broker
restart and then never read their queues again: the worker answers pings, runs
what it already holds, and leaves every new message in Redis (celery/celery#8030,
#10205, #10302; kombu#2007, #2492, #2629). Each fix so far closed one race of
the reconnect; a worker that falls into another stops for good, and with it every
job routed to its queues. Our recovery re-sends those jobs' messages, but only a
consuming worker can answer them.

So each worker on a Redis broker checks its consumer every few seconds. When its
queues have held messages for `stall_s`, while it had room for more and accepted
none, it treats the consumer as stuck and makes Celery reconnect it, the same
restart a lost connection gets. Messages it holds are restored to their queues;
the claims skip any job finished meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
from celery.worker import state

log = logging.getLogger(__name__)

# Long enough that a busy but healthy worker never trips it: a worker with room
# takes a waiting message within one poll of its event loop (about a second).
STALL_S = 30.0
CHECK_INTERVAL_S = 5.0


class ConsumerStuck(redis.exceptions.ConnectionError):
    """Raised inside the worker's event loop; Celery restarts the consumer on it."""


@dataclass
class StallDetector:
    """Says when messages waited, with room to take them and none taken, for `stall_s`."""

    stall_s: float = STALL_S
    _since: float | None = field(default=None, repr=False)
    _last_accepted: int | None = field(default=None, repr=False)

    def reset(self) -> None:
        """Forget the window so far: the next look starts a new one."""
        self._since = None

    def observe(self, now: float, waiting: int, room: int, accepted: int) -> bool:
        """Feed one look at the consumer; True once it has been stuck for `stall_s`."""
        moved = accepted != self._last_accepted
        self._last_accepted = accepted
        if waiting <= 0 or room <= 0 or moved:
            self._since = None
            return False
        if self._since is None:
            self._since = now
            return False
        if now - self._since < self.stall_s:
            return False
        self._since = None  # the reconnect gets a full window of its own
        return True


def queue_depth(client: redis.Redis, queues: Iterable[str]) -> int:
    """Messages waiting in these Redis queues (kombu keeps each as a list)."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.llen(queue)
    return sum(int(n) for n in pipe.execute())


def _raise_stuck() -> None:
    raise ConsumerStuck("consumer took no message while its queues held some")


@dataclass
class ConsumerWatch:
    """Checks one worker's consumer now and then; reconnects it when it is stuck."""

    consumer: Any  # celery.worker.consumer.Consumer
    client: redis.Redis
    # Fixed at start: a consumer stuck mid-restart may have no queues of its own.
    queues: frozenset[str]
    concurrency: int
    detector: StallDetector = field(default_factory=StallDetector)
    interval_s: float = CHECK_INTERVAL_S
    restarts: int = 0

    def check(self, now: float) -> bool:
        """Look once; True when the consumer was found stuck and a reconnect was asked for."""
        waiting = queue_depth(self.client, self.queues)
        room = self.concurrency - len(state.reserved_requests)
        if not self.detector.observe(now, waiting, room, state.all_total_count[0]):
            return False
        hub = getattr(self.consumer, "hub", None)
        if hub is None:
            return False  # no event loop to reconnect from (not a Redis worker)
        log.error(
            "consumer stuck: %d messages waiting, room for %d more, none taken for %.0fs; "
            "reconnecting to the broker",
            waiting,
            room,
            self.detector.stall_s,
        )
        self.restarts += 1
        hub.call_soon(_raise_stuck)
        return True

    def run(self, stop: threading.Event) -> None:
        """Check until `stop` is set; a failed check (Redis away) waits for the next one."""
        while not stop.wait(self.interval_s):
            try:
                self.check(time.monotonic())
            except Exception as exc:
                # The broker is away: so is the consumer, and that is not a stall.
                self.detector.reset()
                log.debug("consumer watch: check failed (%s)", exc)


def start_consumer_watch(watch: ConsumerWatch) -> threading.Event:
    """Run `watch` in a daemon thread; set the returned event to stop it."""
    log.info(
        "consumer watch running: reconnects if messages wait %.0fs with none taken",
        watch.detector.stall_s,
    )
    stop = threading.Event()
    threading.Thread(
        target=watch.run, args=(stop,), name="tierroute-consumer-watch", daemon=True
    ).start()
    return stop
