"""The API's plain-SQL job read gives exactly the ORM path's view."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Services
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.errors import NotFound
from tierroute.domain.specs import JobSpec
from tierroute.pipeline.steps import classify_job, complete_job
from tierroute.runtime import Runtime, get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.job_reads import read_job_view
from tierroute.store.jobs import create_job, get_job, job_view

pytestmark = pytest.mark.integration


@pytest.fixture
def rt(clean_db: Services, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "local")
    return get_runtime()


def submit(spec: JobSpec) -> uuid.UUID:
    with session_scope() as session:
        job, _ = create_job(session, spec, default_max_tokens=256)
        return job.id


def orm_view(job_id: uuid.UUID) -> dict[str, object]:
    with session_scope() as session:
        return job_view(get_job(session, job_id))


def test_every_stage_reads_the_same_as_the_orm_view(rt: Runtime) -> None:
    job_id = submit(JobSpec(prompt="Prove there are infinitely many primes.", metadata={"k": 1}))
    assert read_job_view(job_id) == orm_view(job_id)  # queued: no routing, no calls
    assert classify_job(rt, job_id) is not None
    routed = read_job_view(job_id)
    assert routed == orm_view(job_id) and routed["routing"] is not None
    assert complete_job(rt, job_id) is None
    done = read_job_view(job_id)
    assert done == orm_view(job_id)
    assert done["status"] == "succeeded" and done["result"] and done["cost_usd"] > 0
    assert done["metadata"] == {"k": 1} and done["model"] is not None


def test_another_keys_job_and_a_missing_one_are_not_found(rt: Runtime) -> None:
    job_id = submit(JobSpec(prompt="hello"))
    with pytest.raises(NotFound):
        read_job_view(uuid.uuid4())
    with pytest.raises(NotFound):
        read_job_view(job_id, api_key_id=uuid.uuid4())
