"""Classify messages lost while the broker kept its marker (an AOF Redis that lost its
last writes, a RabbitMQ that dropped them): the stranded-job watch sends them again.

The messages are lost on purpose: the classify worker stops consuming, the feeder
sends a batch's jobs, the classify queue is purged, and consuming resumes. Nothing
tells the recovery that anything was lost, on either broker.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from celery import Celery
from kombu import Connection

from tests.conftest import Services
from tests.reliability.conftest import (
    assert_all_succeeded_once,
    log_text,
    private_server,
    prompts,
    query,
    reliability_stack,
    submit_batch,
    wait_for_batch,
)
from tierroute.devstack.embedded import EmbeddedRedis

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

JOBS = 60
# Low, so the test is short; above the retry countdown cap, as Settings demands.
STALE_ENV = {"TIERROUTE_STALE_AFTER_S": "4", "TIERROUTE_RETRY_BACKOFF_MAX_S": "2"}


@pytest.fixture(params=["redis", "amqp"])
def broker_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "amqp":
        yield request.getfixturevalue("amqp_broker")
        return
    # A Redis of our own: no other test session flushes it (and its marker with it).
    with private_server(EmbeddedRedis, "tierroute-redis-") as server:
        assert server.url is not None
        yield server.url


def wait_until_all_sent(database_url: str, batch_id: str, timeout_s: float = 30) -> None:
    """Until the feeder has stamped every job of the batch as sent."""
    deadline = time.monotonic() + timeout_s
    rows: list[tuple[object, ...]] = []
    while time.monotonic() < deadline:
        rows = query(
            database_url,
            "SELECT count(*) FILTER (WHERE enqueued_at IS NOT NULL AND status = 'queued'), "
            "count(*) FROM jobs WHERE batch_id = %s",
            batch_id,
        )
        if rows[0] == (JOBS, JOBS):
            return
        time.sleep(0.2)
    pytest.fail(f"the feeder did not send the batch: (sent and queued, all) = {rows}")


def test_jobs_whose_classify_messages_were_lost_are_sent_again(
    services: Services, broker_url: str
) -> None:
    with reliability_stack(
        services.database_url,
        broker_url,
        env=STALE_ENV,
        tier_workers=1,
        tier_concurrency=8,
        classify_concurrency=2,
    ) as (stack, _):
        control = Celery(broker=stack.broker_url)
        classify_node = [f"classify@{socket.gethostname()}"]
        try:
            replies = control.control.cancel_consumer(
                "classify", destination=classify_node, reply=True, timeout=10
            )
            assert replies, "the classify worker did not stop consuming"
            batch_id = submit_batch(stack, prompts(JOBS))
            wait_until_all_sent(services.database_url, batch_id)
            with Connection(stack.broker_url) as conn:
                purged = conn.default_channel.queue_purge("classify")
            assert purged, "no classify message was lost: the test proves nothing"
            control.control.add_consumer(
                "classify", destination=classify_node, reply=True, timeout=10
            )
        finally:
            control.close()

        wait_for_batch(services.database_url, batch_id, JOBS, timeout_s=60, stack=stack)

        assert_all_succeeded_once(services.database_url, batch_id, JOBS)
        classify_log = log_text(stack, "worker-classify")
        assert "without their classify message" in classify_log
