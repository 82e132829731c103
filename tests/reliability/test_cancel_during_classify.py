"""Cancelling a 20k batch while the classify workers route it: no 5xx, no deadlock,
and nothing of the batch starts a model call once the cancel has returned (issue 16).

The deadlock needs a chunk and the cancel to cross within a few milliseconds, so
on the old code this failed only now and then; the lock order that rules it
out is checked deterministically in tests/integration/test_cancel_lock_order.py."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import Services
from tests.reliability.conftest import (
    latency_env,
    prompts,
    query,
    reliability_stack,
    status_counts,
    submit_batch,
    wait_for_batch,
)
from tierroute.devstack.stack import RunningStack

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

JOBS = 20_000
ROUNDS = 3
# Cancel once this many jobs have left `queued`: the classify workers are busy routing.
UNDER_WAY = 3000


def wait_until_classifying(database_url: str, batch_id: str, timeout_s: float = 60) -> int:
    """Jobs past `queued` once classification is under way but far from done."""
    deadline = time.monotonic() + timeout_s
    moved = 0
    while time.monotonic() < deadline:
        counts = status_counts(database_url, batch_id)
        moved = JOBS - counts.get("queued", 0)
        if moved >= UNDER_WAY:
            assert counts.get("queued", 0) > JOBS // 2, f"classified too far to test: {counts}"
            return moved
        time.sleep(0.05)
    pytest.fail(f"classification did not start in {timeout_s:.0f}s: {moved} jobs moved")


def deadlocks(database_url: str) -> int:
    """Deadlocks Postgres has detected in the test database so far."""
    rows = query(
        database_url,
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
    )
    return int(rows[0][0])


def cancel(stack: RunningStack, batch_id: str) -> httpx.Response:
    return httpx.post(
        f"{stack.api_url}/v1/batches/{batch_id}/cancel",
        headers={"Authorization": f"Bearer {stack.api_key}"},
        timeout=60,
    )


def test_cancel_during_classification_stops_the_batches(services: Services) -> None:
    with reliability_stack(
        services.database_url,
        services.broker_url,
        # Slow answers keep the tier side small, so the cancel meets routing, not calls.
        simulator_env=latency_env(haiku=1000, sonnet=1000, opus=1000),
        # Big chunks hold many rows while they are routed: the cancel meets them.
        env={"TIERROUTE_CLASSIFY_BATCH_SIZE": "500", "TIERROUTE_FEEDER_CHUNK": "1000"},
        tier_workers=1,
        tier_concurrency=8,
        classify_concurrency=16,
    ) as (stack, _):
        deadlocks_before = deadlocks(services.database_url)
        # Each round is a chance for the old lock orders to cross; one was not always enough.
        for _ in range(ROUNDS):
            cancel_during_classification(services, stack)
        # Not one, whichever side Postgres would have chosen to kill.
        assert deadlocks(services.database_url) == deadlocks_before


def cancel_during_classification(services: Services, stack: RunningStack) -> None:
    """Submit a batch, cancel it while it is being routed, and check what ran after."""
    batch_id = submit_batch(stack, prompts(JOBS))
    wait_until_classifying(services.database_url, batch_id)

    response = cancel(stack, batch_id)
    assert response.status_code == 200, response.text
    (cancelled_by,) = query(services.database_url, "SELECT clock_timestamp()")[0]
    cancelled = int(response.json()["cancelled"])
    assert cancelled > JOBS // 2  # most were still queued

    wait_for_batch(services.database_url, batch_id, JOBS, timeout_s=60, stack=stack)
    counts = status_counts(services.database_url, batch_id)
    assert counts.get("cancelled") == cancelled, counts
    assert set(counts) <= {"succeeded", "cancelled"}, counts
    # A job's model call starts with its claim (`started_at`); none after the cancel.
    late = query(
        services.database_url,
        "SELECT count(*) FROM jobs WHERE batch_id = %s AND started_at > %s",
        batch_id,
        cancelled_by,
    )[0][0]
    assert late == 0
    billed_cancelled = query(
        services.database_url,
        "SELECT count(*) FROM jobs j JOIN model_calls c ON c.job_id = j.id "
        "WHERE j.batch_id = %s AND j.status = 'cancelled' AND c.purpose = 'complete'",
        batch_id,
    )[0][0]
    assert billed_cancelled == 0
