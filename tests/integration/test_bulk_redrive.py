"""Bulk id operations at any batch size: a redrive of more jobs than Postgres takes
parameters in one statement (65,535) requeues them all."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.deps import get_enqueuer
from tests.conftest import Services
from tests.integration.test_api_auth import NoBroker, bearer, new_key
from tierroute.store.engine import session_scope

pytestmark = pytest.mark.integration

# One more than a statement's parameter limit, so a parameter per id cannot work.
JOBS = 66_000
REJECTED = 1_000  # the budget rejected these; a redrive routes them afresh


@pytest.fixture
def client(clean_db: Services) -> Iterator[TestClient]:
    app = create_app()
    app.dependency_overrides[get_enqueuer] = NoBroker
    with TestClient(app) as test_client:
        yield test_client


def failed_batch(api_key_id: uuid.UUID) -> uuid.UUID:
    """A batch of JOBS failed or dead jobs, the first REJECTED of them rejected by the budget."""
    batch_id = uuid.uuid4()
    with session_scope() as session:
        session.execute(
            text("INSERT INTO batches (id, api_key_id, job_count) VALUES (:b, :k, :n)"),
            {"b": batch_id, "k": api_key_id, "n": JOBS},
        )
        session.execute(
            text(
                """
                INSERT INTO jobs (id, batch_id, api_key_id, status, prompt, max_tokens, tier,
                                  attempts, error, classified_at, finished_at)
                SELECT gen_random_uuid(), :b, :k,
                       CASE WHEN n % 2 = 0 THEN 'failed' ELSE 'dead' END,
                       'prompt ' || n, 100, 'haiku', 3, 'boom', now(), now()
                  FROM generate_series(1, :n) AS n
                """
            ),
            {"b": batch_id, "k": api_key_id, "n": JOBS},
        )
        session.execute(
            text(
                """
                INSERT INTO routing_decisions (job_id, tier, confidence, reasoning, classifier,
                                               cost_ratio, budget_action)
                SELECT id, 'haiku', 0.9, 'r', 'llm', 0.2,
                       CASE WHEN row_number() OVER (ORDER BY id) <= :rejected
                            THEN 'rejected' END
                  FROM jobs WHERE batch_id = :b
                """
            ),
            {"b": batch_id, "rejected": REJECTED},
        )
    return batch_id


def test_a_redrive_beyond_the_parameter_limit_requeues_every_job(client: TestClient) -> None:
    key_id, raw = new_key()
    batch_id = failed_batch(key_id)

    response = client.post(f"/v1/batches/{batch_id}/redrive", headers=bearer(raw))

    assert response.status_code == 200, response.text
    assert response.json() == {"id": str(batch_id), "requeued": JOBS}
    with session_scope() as session:
        states = session.execute(
            text(
                """
                SELECT status, enqueued_at IS NULL AS unsent, attempts, tier IS NULL AS unrouted,
                       count(*)
                  FROM jobs WHERE batch_id = :b GROUP BY 1, 2, 3, 4 ORDER BY 4
                """
            ),
            {"b": batch_id},
        ).all()
        decisions = session.execute(
            text(
                """
                SELECT budget_action, count(*) FROM routing_decisions d
                  JOIN jobs j ON j.id = d.job_id WHERE j.batch_id = :b GROUP BY 1
                """
            ),
            {"b": batch_id},
        ).all()
    # All queued again and unsent; the rejected ones lose their tier and decision.
    assert [tuple(row) for row in states] == [
        ("queued", True, 0, False, JOBS - REJECTED),
        ("queued", True, 0, True, REJECTED),
    ]
    assert [tuple(row) for row in decisions] == [(None, JOBS - REJECTED)]
