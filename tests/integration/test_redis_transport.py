"""The workers' Redis transport: kombu's, with one client per channel, same guarantees."""

from __future__ import annotations

import pytest
import redis
from kombu import Connection

from tests.conftest import Services
from worker.celery_app import broker_transport
from worker.redis_transport import TRANSPORT, Channel

pytestmark = pytest.mark.integration

QUEUE = "tierroute-test-transport"


def test_only_plain_redis_urls_use_it() -> None:
    assert broker_transport("redis://127.0.0.1:6379/0") == TRANSPORT
    for url in ("rediss://host:6380/0", "unix:///tmp/redis.sock", "amqp://guest@host//"):
        assert broker_transport(url) is None


def test_one_client_serves_every_ack_and_late_acks_still_hold(env: Services) -> None:
    with Connection(env.broker_url, transport=TRANSPORT) as conn:
        channel = conn.channel()
        assert isinstance(channel, Channel)
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second  # kombu's own builds a new redis.Redis each time
        queue = conn.SimpleQueue(QUEUE)
        queue.clear()
        queue.put({"n": 1})
        message = queue.get(timeout=5)
        unacked = redis.Redis.from_url(env.broker_url)
        # Delivered, not yet acked: kept for redelivery should this worker die.
        assert unacked.hlen(channel.unacked_key) >= 1
        message.ack()
        assert not unacked.hexists(channel.unacked_key, message.delivery_tag)
        queue.close()
        unacked.close()


def test_closing_a_channel_after_its_connection_was_collected_is_a_connection_error(
    env: Services,
) -> None:
    # Celery, on a lost broker connection, collects the connection (which drops the
    # transport's client) and then closes it. If the first close of the default
    # channel stopped early (its BRPOP read failed), the second one restores the
    # unacknowledged messages through a pool that kombu rebuilds from that client:
    # AttributeError, which Celery does not treat as a connection error. The tier
    # worker then stopped for good ("Unrecoverable error"); see docs/reliability.md.
    conn = Connection(env.broker_url, transport=TRANSPORT)
    queue = conn.SimpleQueue(QUEUE)
    queue.clear()
    queue.put({"n": 1})
    queue.get(timeout=5)  # delivered, not acked: the close will restore it
    channel = conn.default_channel
    channel._disconnect_pools()  # where the first close got to
    conn.transport.client = None  # what collect() leaves
    with pytest.raises(conn.connection_errors):
        channel.close()
    conn.maybe_close_channel(channel)  # and so Celery's close goes on
