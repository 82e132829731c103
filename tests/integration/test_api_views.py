"""The job and batch read routes' response models: documented in /openapi.json, and
serving exactly the views the store builds (no field added, dropped or retyped)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, update

from api.app import create_app
from api.deps import get_enqueuer
from api.schemas import BatchView, JobView
from tests.conftest import Services
from tests.no_broker import NoBroker
from tierroute.domain.specs import JobSpec
from tierroute.domain.status import BatchMode
from tierroute.store.engine import session_scope
from tierroute.store.ingest import copy_batch
from tierroute.store.job_reads import read_job_view
from tierroute.store.jobs import batch_view, create_job
from tierroute.store.keys import create_api_key
from tierroute.store.models import Job, ModelCall, RoutingDecision

pytestmark = pytest.mark.integration


@pytest.fixture
def client(clean_db: Services) -> Iterator[TestClient]:
    app = create_app()
    app.dependency_overrides[get_enqueuer] = NoBroker
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def key() -> tuple[uuid.UUID, dict[str, str]]:
    with session_scope() as session:
        row, raw = create_api_key(session, "views")
        return row.id, {"Authorization": f"Bearer {raw}"}


def as_json(view: dict[str, Any]) -> Any:
    """The view as the route served it before it had a response model."""
    return json.loads(json.dumps(view))


def call(job_id: uuid.UUID, purpose: str, cost: str, **fields: Any) -> ModelCall:
    return ModelCall(
        job_id=job_id,
        purpose=purpose,
        model="claude-haiku-4-5",
        tier="haiku",
        input_tokens=fields.pop("input_tokens", 120),
        output_tokens=fields.pop("output_tokens", 40),
        cost_usd=Decimal(cost),
        cost_if_opus_usd=Decimal(cost) * 5,
        latency_ms=fields.pop("latency_ms", 321),
        **fields,
    )


def finished_job(api_key_id: uuid.UUID) -> uuid.UUID:
    """A succeeded job with routing, a classifier call and a cached completion."""
    with session_scope() as session:
        job, _ = create_job(
            session,
            JobSpec(prompt="What is 2 + 2?", metadata={"team": "a", "n": [1, 2]}),
            default_max_tokens=256,
            api_key_id=api_key_id,
        )
        session.add(
            RoutingDecision(
                job_id=job.id,
                tier="haiku",
                proposed_tier="haiku",
                confidence=0.91,
                score=0.12,
                reasoning="arithmetic",
                classifier="local",
                classifier_version="v1",
                cost_ratio=0.2,
            )
        )
        session.add(call(job.id, "classify", "0.000100"))
        session.add(
            call(
                job.id,
                "complete",
                "0.000420",
                stop_reason="end_turn",
                cache_creation_input_tokens=10,
                cache_read_input_tokens=90,
                simulated=True,
            )
        )
        session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(
                status="succeeded",
                tier="haiku",
                result_text="4",
                attempts=1,
                classified_at=func.now(),
                started_at=func.now(),
                finished_at=func.now(),
            )
        )
        return job.id


def queued_job(api_key_id: uuid.UUID) -> uuid.UUID:
    with session_scope() as session:
        job, _ = create_job(
            session, JobSpec(prompt="hello"), default_max_tokens=256, api_key_id=api_key_id
        )
        return job.id


def test_a_job_reads_the_same_through_the_response_model(
    client: TestClient, key: tuple[uuid.UUID, dict[str, str]]
) -> None:
    key_id, auth = key
    for job_id in (finished_job(key_id), queued_job(key_id)):
        response = client.get(f"/v1/jobs/{job_id}", headers=auth)
        assert response.status_code == 200, response.text
        assert response.json() == as_json(read_job_view(job_id))
    done = client.get(f"/v1/jobs/{finished_job(key_id)}", headers=auth).json()
    assert done["routing"]["version"] == "v1" and done["metadata"] == {"team": "a", "n": [1, 2]}
    assert done["cost_usd"] == pytest.approx(0.00052) and done["cache_read_input_tokens"] == 90


def test_a_batch_reads_the_same_and_only_batch_api_has_provider_batches(
    client: TestClient, key: tuple[uuid.UUID, dict[str, str]]
) -> None:
    key_id, auth = key
    specs = [JobSpec(prompt=f"prompt {i}") for i in range(3)]
    for mode in (BatchMode.LIVE, BatchMode.BATCH_API):
        with session_scope() as session:
            batch_id, _ = copy_batch(
                session, specs, default_max_tokens=256, api_key_id=key_id, mode=mode
            )
        with session_scope() as session:
            expected = as_json(batch_view(session, batch_id))
        served = client.get(f"/v1/batches/{batch_id}", headers=auth).json()
        if mode == BatchMode.BATCH_API:
            assert served.pop("provider_batches") == []
        assert served == expected
        assert served["counts"]["queued"] == 3 and served["mode"] == mode.value


def test_openapi_documents_the_views_with_every_field(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]

    def ok_schema(path: str) -> dict[str, Any]:
        content: dict[str, Any] = paths[path]["get"]["responses"]["200"]["content"]
        return content["application/json"]["schema"]

    assert ok_schema("/v1/jobs/{job_id}") == {"$ref": "#/components/schemas/JobView"}
    assert ok_schema("/v1/batches/{batch_id}") == {"$ref": "#/components/schemas/BatchView"}
    results = paths["/v1/batches/{batch_id}/results"]["get"]["responses"]["200"]
    assert list(results["content"]) == ["application/x-ndjson"]
    documented = schema["components"]["schemas"]
    assert set(documented["JobView"]["properties"]) == set(JobView.model_fields)
    assert set(documented["BatchView"]["properties"]) == set(BatchView.model_fields)
    assert "RoutingView" in documented and "ProviderBatchView" in documented
