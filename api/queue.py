"""Enqueueing from the API: a Celery client that only sends tasks by name.

The API never imports the worker package; it only knows task names and queues.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from amqp.exceptions import ChannelError
from celery import Celery

from tierroute.messages import CLASSIFY, CLASSIFY_QUEUE


class Enqueuer:
    """Sends classify tasks over one pooled broker connection."""

    def __init__(self, broker_url: str, visibility_timeout_s: float) -> None:
        self._celery = Celery("tierroute-api", broker=broker_url)
        self._celery.conf.update(
            broker_connection_retry_on_startup=True,
            # The same value as the workers': the Redis transport reads it on both sides.
            broker_transport_options={"visibility_timeout": visibility_timeout_s},
        )

    def classify(self, job_ids: Iterable[uuid.UUID]) -> int:
        """Enqueue classification of committed jobs; returns how many were sent."""
        sent = 0
        with self._celery.producer_or_acquire() as producer:
            for job_id in job_ids:
                self._celery.send_task(
                    CLASSIFY, args=[str(job_id)], queue=CLASSIFY_QUEUE, producer=producer
                )
                sent += 1
        return sent

    def queue_depths(self, queues: Iterable[str]) -> dict[str, int]:
        """Messages waiting in each queue (not those a worker has reserved)."""
        depths = {}
        opened = []
        with self._celery.connection_for_read() as conn:
            channel = conn.default_channel
            try:
                for name in queues:
                    try:
                        declared = channel.queue_declare(queue=name, passive=True)
                    except ChannelError:
                        # Redis drops an empty list's key: no queue, no messages.
                        depths[name] = 0
                        if not getattr(channel, "is_open", True):
                            # RabbitMQ closes a channel whose passive declare failed.
                            channel = conn.channel()
                            opened.append(channel)
                        continue
                    depths[name] = int(declared.message_count)
            finally:
                for extra in opened:
                    extra.close()
        return depths

    def ping(self) -> None:
        """Raise if the broker is unreachable."""
        with self._celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)

    def close(self) -> None:
        self._celery.close()
