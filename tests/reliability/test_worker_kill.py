"""A tier worker SIGKILLed twice with model calls in flight: nothing is lost or billed twice."""

from __future__ import annotations

import socket
import time

import pytest
from celery import Celery

from tests.conftest import Services
from tests.reliability.conftest import (
    QUICK_RECOVERY_ENV,
    assert_all_succeeded_once,
    latency_env,
    prompts,
    query,
    reliability_stack,
    sim_stats,
    submit_batch,
    wait_for_batch,
)
from tierroute.devstack.procs import Child
from tierroute.devstack.stack import RunningStack, StackOptions, add_tier_worker

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

JOBS = 200
# A kill counts only with at least this many of the worker's calls in flight.
IN_FLIGHT_AT_KILL = 4


def calls_in_flight(stack: RunningStack, worker: Child) -> int:
    """The simulator's count of open requests from this worker process."""
    by_client = sim_stats(stack)["in_flight_by_client"]
    return int(by_client.get(f"tiers-{worker.process.pid}", 0))


def kill_with_calls_in_flight(stack: RunningStack, worker: Child, timeout_s: float = 30) -> int:
    """SIGKILL `worker` once it has calls in flight; returns how many it had."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert worker.alive(), f"{worker.name} died on its own:\n{worker.log_tail()}"
        in_flight = calls_in_flight(stack, worker)
        if in_flight >= IN_FLIGHT_AT_KILL:
            worker.process.kill()  # SIGKILL: no warm shutdown, no acks, no restore
            worker.process.wait(10)
            return in_flight
        time.sleep(0.05)
    pytest.fail(f"{worker.name} never had {IN_FLIGHT_AT_KILL} calls in flight")


def replace_worker(stack: RunningStack, options: StackOptions, node: str) -> Child:
    """Start a tier worker and wait until it answers a ping."""
    worker = add_tier_worker(stack, options, node)
    celery = Celery(broker=stack.broker_url)
    name = f"{node}@{socket.gethostname()}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert worker.alive(), f"{worker.name} exited:\n{worker.log_tail()}"
            if celery.control.ping(destination=[name], timeout=1.0):
                return worker
        pytest.fail(f"{name} did not answer a ping")
    finally:
        celery.close()


def test_sigkilled_tier_workers_lose_nothing_and_bill_nothing_twice(services: Services) -> None:
    began = time.monotonic()
    with reliability_stack(
        services.database_url,
        services.broker_url,
        # Calls last long enough to be in flight when the worker dies.
        simulator_env=latency_env(haiku=300, sonnet=1000, opus=1000),
    ) as (stack, options):
        submitted = time.monotonic()
        batch_id = submit_batch(stack, prompts(JOBS))
        worker = next(c for c in stack.children if c.name == "worker-tiers")
        killed_in_flight = [kill_with_calls_in_flight(stack, worker)]
        worker = replace_worker(stack, options, "tiers-r1")
        killed_in_flight.append(kill_with_calls_in_flight(stack, worker))
        replace_worker(stack, options, "tiers-r2")
        # The dead workers' messages come back after the visibility timeout (40 s).
        wait_for_batch(services.database_url, batch_id, JOBS, timeout_s=120, stack=stack)
        took = time.monotonic() - submitted

        assert_all_succeeded_once(services.database_url, batch_id, JOBS)
        # The calls that died with the workers were claimed again once their leases
        # (request timeout + 30 s) had run out: a second attempt, one stored call.
        [(recovered,)] = query(
            services.database_url,
            "SELECT count(*) FROM jobs WHERE batch_id = %s AND attempts >= 2",
            batch_id,
        )
        assert recovered >= IN_FLIGHT_AT_KILL
        visibility = float(QUICK_RECOVERY_ENV["TIERROUTE_VISIBILITY_TIMEOUT_S"])
        assert took > visibility  # the stranded jobs waited for redelivery, as they must
    print(
        f"\nkilled with {killed_in_flight} calls in flight; {recovered} jobs recovered; "
        f"batch done {took:.1f}s after submit; test {time.monotonic() - began:.1f}s"
    )
