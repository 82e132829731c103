"""The classify worker also runs the feeder, sending queued jobs over one connection."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence

from amqp.exceptions import ChannelError
from celery import Celery

from tierroute.feeder import Feeder, start_feeder_thread

CLASSIFY_TASK = "tierroute.classify"
CLASSIFY_QUEUE = "classify"

log = logging.getLogger(__name__)


class CeleryOutlet:
    """Publishes classify messages and reads the queue's depth through one connection."""

    def __init__(self, app: Celery) -> None:
        self._app = app
        self._lock = threading.Lock()

    def send_many(self, job_ids: Sequence[uuid.UUID]) -> None:
        with self._lock, self._app.producer_or_acquire() as producer:
            for job_id in job_ids:
                self._app.send_task(
                    CLASSIFY_TASK, args=[str(job_id)], queue=CLASSIFY_QUEUE, producer=producer
                )

    def queue_depth(self) -> int:
        with self._lock, self._app.connection_for_read() as conn:
            try:
                declared = conn.default_channel.queue_declare(queue=CLASSIFY_QUEUE, passive=True)
            except ChannelError:
                return 0  # Redis drops an empty list's key: no queue means no messages
            return int(declared.message_count)


def start(app: Celery, max_depth: int, chunk: int) -> threading.Event:
    """Start the feeder thread for this worker; set the event to stop it."""
    outlet = CeleryOutlet(app)
    feeder = Feeder(
        send_many=outlet.send_many,
        queue_depth=outlet.queue_depth,
        max_depth=max_depth,
        chunk=chunk,
    )
    _, stop = start_feeder_thread(feeder)
    return stop
