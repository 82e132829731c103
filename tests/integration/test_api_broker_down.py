"""A committed job is never lost when the broker is away at submit time."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import pytest
from fastapi.testclient import TestClient
from kombu.exceptions import OperationalError
from sqlalchemy import select

from api.app import create_app
from api.deps import get_enqueuer
from tests.conftest import Services
from tierroute.pipeline.feeder import Feeder
from tierroute.store.engine import session_scope
from tierroute.store.keys import create_api_key
from tierroute.store.models import Job

pytestmark = pytest.mark.integration


class BrokerDown:
    def classify(self, job_ids: Iterable[uuid.UUID]) -> int:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    def ping(self) -> None:
        raise OperationalError("Connection refused")

    def close(self) -> None:
        pass


def new_key() -> tuple[uuid.UUID, dict[str, str]]:
    """A fresh API key's id and the header that sends it."""
    with session_scope() as session:
        key, raw = create_api_key(session, "test")
    return key.id, {"Authorization": f"Bearer {raw}"}


def test_submit_answers_202_and_the_feeder_sends_the_job_later(clean_db: Services) -> None:
    app = create_app()
    app.dependency_overrides[get_enqueuer] = BrokerDown
    with TestClient(app) as client:
        client.headers.update(new_key()[1])
        response = client.post("/v1/jobs", json={"prompt": "Format this JSON: {}"})
        assert response.status_code == 202, response.text
        job_id = uuid.UUID(response.json()["id"])
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["broker"] == "unreachable"
        with session_scope() as session:
            job = session.scalars(select(Job).where(Job.id == job_id)).one()
            assert job.status == "queued" and job.enqueued_at is None  # left for the feeder
        sent: list[uuid.UUID] = []
        assert Feeder(send_many=sent.extend, queue_depth=lambda: 0).feed_once() == 1
        assert sent == [job_id]


def test_retry_and_redrive_routes(clean_db: Services) -> None:
    from tierroute.runtime import get_runtime
    from tierroute.store.ingest import copy_batch, ndjson_specs

    get_runtime()
    key_id, auth = new_key()
    with session_scope() as session:
        batch_id, _ = copy_batch(
            session,
            ndjson_specs([b'{"prompt": "a"}', b'{"prompt": "b"}']),
            default_max_tokens=50,
            api_key_id=key_id,
        )
    with session_scope() as session:
        jobs = session.scalars(select(Job).where(Job.batch_id == batch_id)).all()
        for job, status in zip(jobs, ("dead", "succeeded"), strict=True):
            job.status, job.tier, job.enqueued_at = status, "haiku", job.created_at
    dead, done = jobs
    app = create_app()
    app.dependency_overrides[get_enqueuer] = BrokerDown
    with TestClient(app, headers=auth) as client:
        refused = client.post(f"/v1/jobs/{done.id}/retry")
        assert refused.status_code == 409 and "only failed or dead" in refused.json()["detail"]
        assert client.post(f"/v1/jobs/{uuid.uuid4()}/retry").status_code == 404
        retried = client.post(f"/v1/jobs/{dead.id}/retry")
        assert retried.status_code == 202 and retried.json()["status"] == "queued"
        assert client.post(f"/v1/batches/{batch_id}/redrive").json()["requeued"] == 0
        with session_scope() as session:
            session.get(Job, dead.id).status = "failed"  # type: ignore[union-attr]
        assert client.post(f"/v1/batches/{batch_id}/redrive").json()["requeued"] == 1
