"""GET /v1/jobs/{id} through a job's life: queued, routed, running, succeeded.

`routed` is its own status (tierroute/domain/status.py): a job whose tier is
chosen and that waits for its tier worker reads as routed, then moves on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.deps import get_enqueuer
from tests.conftest import Services
from tests.no_broker import NoBroker
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.errors import NotFound, ProviderError
from tierroute.domain.specs import JobSpec
from tierroute.domain.status import CallPurpose, JobStatus
from tierroute.llm.provider import CallResult, call_model
from tierroute.pipeline.classify_chunk import classify_batch
from tierroute.pipeline.steps import ClaimedCall, claim_call, classify_job, finish_call
from tierroute.runtime import Runtime, get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.ingest import copy_batch
from tierroute.store.job_reads import read_job_view
from tierroute.store.jobs import create_job
from tierroute.store.keys import create_api_key
from tierroute.store.models import Job

pytestmark = pytest.mark.integration


@pytest.fixture
def rt(clean_db: Services, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "local")
    return get_runtime()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    app = create_app()
    app.dependency_overrides[get_enqueuer] = NoBroker
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def key() -> tuple[uuid.UUID, dict[str, str]]:
    with session_scope() as session:
        row, raw = create_api_key(session, "jobread")
        return row.id, {"Authorization": f"Bearer {raw}"}


def submit(spec: JobSpec, api_key_id: uuid.UUID | None = None) -> uuid.UUID:
    with session_scope() as session:
        job, _ = create_job(session, spec, default_max_tokens=256, api_key_id=api_key_id)
        return job.id


def get(client: TestClient, headers: dict[str, str], job_id: uuid.UUID) -> dict[str, Any]:
    response = client.get(f"/v1/jobs/{job_id}", headers=headers)
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


def test_a_routed_job_reads_as_routed_then_running_then_succeeded(
    rt: Runtime, client: TestClient, key: tuple[uuid.UUID, dict[str, str]]
) -> None:
    key_id, headers = key
    job_id = submit(JobSpec(prompt="Prove there are infinitely many primes."), key_id)
    queued = get(client, headers, job_id)
    assert queued["status"] == "queued" and queued["tier"] is None and queued["routing"] is None

    tier = classify_job(rt, job_id)
    assert tier in rt.tiers.names
    routed = get(client, headers, job_id)
    assert routed["status"] == "routed" == JobStatus.ROUTED
    assert routed["tier"] == tier and routed["routing"]["tier"] == tier
    assert routed["classified_at"] is not None and routed["started_at"] is None
    assert routed["attempts"] == 0 and routed["result"] is None

    claimed = claim_call(rt, job_id)  # a tier worker takes it for its model call
    assert isinstance(claimed, ClaimedCall)
    running = get(client, headers, job_id)
    assert running["status"] == "running" and running["attempts"] == 1
    assert running["started_at"] is not None
    assert classify_job(rt, job_id) is None  # a duplicate classify leaves it running

    outcome: CallResult | ProviderError = call_model(
        rt.client,
        claimed.params,
        purpose=CallPurpose.COMPLETE,
        tiers=rt.tiers,
        simulated=rt.settings.simulated,
    )
    assert finish_call(rt, claimed, outcome) is None
    done = get(client, headers, job_id)
    assert done["status"] == "succeeded" and done["result"] and done["cost_usd"] > 0
    assert done == read_job_view(job_id)  # the route serves the store's view


def test_a_batch_counts_its_routed_jobs(
    rt: Runtime, client: TestClient, key: tuple[uuid.UUID, dict[str, str]]
) -> None:
    key_id, headers = key
    with session_scope() as session:
        specs = [JobSpec(prompt=f"Name a prime above {n}.") for n in (10, 20, 30)]
        batch_id, _ = copy_batch(session, specs, default_max_tokens=64, api_key_id=key_id)
    with session_scope() as session:
        ids = list(session.scalars(select(Job.id).where(Job.batch_id == batch_id)))
    routing = classify_batch(rt, ids[:2])  # the chunk path: queued → routed at once
    assert {job_id for job_id, _ in routing.hand_on} == set(ids[:2])
    response = client.get(f"/v1/batches/{batch_id}", headers=headers)
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["counts"]["routed"] == 2 and view["counts"]["queued"] == 1
    assert set(view["counts"]) == {status.value for status in JobStatus}
    assert view["finished"] == 0 and not view["done"]


def test_another_keys_job_and_a_missing_one_are_not_found(rt: Runtime) -> None:
    job_id = submit(JobSpec(prompt="hello"))
    with pytest.raises(NotFound):
        read_job_view(uuid.uuid4())
    with pytest.raises(NotFound):
        read_job_view(job_id, api_key_id=uuid.uuid4())
