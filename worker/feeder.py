"""The classify worker also runs the feeder, sending queued jobs over one connection."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import redis
from amqp.exceptions import ChannelError
from celery import Celery
from kombu import Connection

from tierroute.messages import CLASSIFY, CLASSIFY_MANY, CLASSIFY_QUEUE, COMPLETE
from tierroute.pipeline.feeder import Feeder, start_feeder_thread
from tierroute.pipeline.recovery import LostMessageWatch, StaleRouteWatch, StrandedJobWatch

# Present while the broker's Redis still holds what we sent it (tierroute/pipeline/recovery.py).
MARKER_KEY = "tierroute:broker-marker"

log = logging.getLogger(__name__)


class CeleryOutlet:
    """Publishes classify messages and reads the queue's depth through one connection."""

    def __init__(self, app: Celery, ids_per_message: int = 1) -> None:
        self._app = app
        self._ids_per_message = ids_per_message
        self._lock = threading.Lock()
        # Kept open: a new broker connection per depth check (several a second) costs
        # a Redis connect and the client's version lookup, which showed in profiles.
        self._reader: Connection | None = None

    def send_many(self, job_ids: Sequence[uuid.UUID]) -> None:
        # One pipelined round trip per chunk on Redis (kombu's publish batch), not one
        # per message, which costs less CPU per message and sends the chunk sooner.
        # Transports without batches publish one by one.
        # With several ids per message, each message is a `classify_many` chunk.
        step = self._ids_per_message
        chunks = [job_ids[i : i + step] for i in range(0, len(job_ids), step)]
        with (
            self._lock,
            self._app.producer_or_acquire() as producer,
            producer.batch(max_size=len(chunks) or 1),
        ):
            for chunk in chunks:
                args: list[Any]
                if step == 1:
                    name, args = CLASSIFY, [str(chunk[0])]
                else:
                    name, args = CLASSIFY_MANY, [[str(job_id) for job_id in chunk]]
                self._app.send_task(name, args=args, queue=CLASSIFY_QUEUE, producer=producer)

    def send_complete(self, jobs: Sequence[tuple[uuid.UUID, str]]) -> None:
        with (
            self._lock,
            self._app.producer_or_acquire() as producer,
            producer.batch(max_size=len(jobs) or 1),
        ):
            for job_id, tier in jobs:
                self._app.send_task(COMPLETE, args=[str(job_id)], queue=tier, producer=producer)

    def queue_depth(self) -> int:
        with self._lock:
            if self._reader is None:
                self._reader = self._app.connection_for_read()
            try:
                channel = self._reader.default_channel
                declared = channel.queue_declare(queue=CLASSIFY_QUEUE, passive=True)
            except ChannelError:
                # Redis drops an empty list's key: no queue means no messages. RabbitMQ
                # closes the channel on a missing queue, so start afresh next time.
                self._close_reader()
                return 0
            except Exception:
                self._close_reader()  # a broken connection: reconnect on the next check
                raise
            # In jobs, as the feeder counts: a chunk message holds up to ids_per_message.
            return int(declared.message_count) * self._ids_per_message

    def _close_reader(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception):
                self._reader.release()
            self._reader = None


class RedisMarker:
    """The recovery marker as a key in the broker's Redis, lost with its messages."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def intact(self) -> bool:
        return bool(self._client.exists(MARKER_KEY))

    def mark(self) -> None:
        self._client.set(MARKER_KEY, f"{socket.gethostname()}:{os.getpid()} at {time.time():.0f}")


def start(
    app: Celery,
    max_depth: int,
    chunk: int,
    redis_broker_url: str | None = None,
    ids_per_message: int = 1,
    stale_after_s: float = 4500.0,
) -> threading.Event:
    """Start the feeder thread for this worker; set the event to stop it.

    On every broker the thread also sends again the message of each job left
    unfinished and untouched for `stale_after_s` (its message lost: a broker that
    dropped it, a worker that died with it). With a Redis broker it also re-sends
    every unfinished job's message at once when Redis has lost its data.
    """
    outlet = CeleryOutlet(app, ids_per_message)
    checks: list[Callable[[], object]] = []
    if redis_broker_url is not None:
        checks.append(
            LostMessageWatch(
                RedisMarker(redis_broker_url), outlet.send_many, outlet.send_complete
            ).check
        )
    interval_s = max(1.0, min(10.0, stale_after_s / 20))
    checks.append(StrandedJobWatch(outlet.send_many, stale_after_s, interval_s).check)
    checks.append(StaleRouteWatch(outlet.send_complete, stale_after_s, interval_s).check)
    feeder = Feeder(
        send_many=outlet.send_many,
        queue_depth=outlet.queue_depth,
        max_depth=max_depth,
        chunk=chunk,
        before_round=lambda: [check() for check in checks],
    )
    _, stop = start_feeder_thread(feeder)
    return stop
