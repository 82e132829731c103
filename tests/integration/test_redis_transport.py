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
