"""kombu's Redis transport, reusing one Redis client per channel.

With late acks, kombu's Redis channel records every message it delivers (a
pipeline to the unacked hash) and removes it on ack, and for each it builds a new
`redis.Redis` client around the same connection pool (`conn_or_acquire` without a
client). Building one fills its response-callback table: in py-spy profiles that
was a real share of a tier worker's GIL time, more so with many calls in flight,
all of it on the consumer thread that hands out messages. A `redis.Redis`
is thread-safe (each command checks a connection out of the pool), so one per
channel serves every caller.

Selected with Celery's `broker_transport` when the broker is Redis
(worker/celery_app.py); the benchmark's raw-chain floor uses it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    """A Redis channel whose synchronous commands share one client."""

    _shared_client: Any = None
    _shared_client_pool: Any = None

    def _get_pool(self, asynchronous: bool = False) -> Any:
        # kombu builds a pool from the connection's URL. A channel closed after Celery
        # collected its lost connection has none, and kombu raised AttributeError on
        # it, which Celery takes for an unrecoverable error: the worker stopped for
        # good instead of reconnecting. Without a connection this is a connection
        # error, which the close ignores.
        if self.connection is None or self.connection.client is None:
            raise redis.exceptions.ConnectionError("the broker connection is closed")
        return super()._get_pool(asynchronous)

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        pool = self.pool
        # A channel that replaced its pool (a reconnect) gets a client on the new one.
        if self._shared_client is None or self._shared_client_pool is not pool:
            self._shared_client = self._create_client()
            self._shared_client_pool = pool
        yield self._shared_client


class Transport(kombu_redis.Transport):
    """The Redis transport with `Channel` above."""

    Channel = Channel


TRANSPORT = "worker.redis_transport:Transport"
