"""The in-process classifier routes a job inside the transaction that claims it."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from tests.conftest import Services
from tests.steps import complete_job
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.specs import JobSpec
from tierroute.domain.status import JobStatus
from tierroute.pipeline.steps import classify_job
from tierroute.runtime import Runtime, get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.job_reads import read_job_view
from tierroute.store.jobs import create_job
from tierroute.store.models import Job, ModelCall, RoutingDecision

pytestmark = pytest.mark.integration


@pytest.fixture
def rt(clean_db: Services, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "local")
    runtime = get_runtime()
    assert runtime.classifier.in_process
    return runtime


def submit(prompt: str) -> uuid.UUID:
    with session_scope() as session:
        job, _ = create_job(session, JobSpec(prompt=prompt), default_max_tokens=256)
        return job.id


def decisions(job_id: uuid.UUID) -> list[RoutingDecision]:
    with session_scope() as session:
        return list(
            session.scalars(select(RoutingDecision).where(RoutingDecision.job_id == job_id))
        )


def test_one_transaction_routes_records_and_bills_nothing(rt: Runtime) -> None:
    job = submit("What is the capital of France?")
    tier = classify_job(rt, job)
    assert tier in rt.tiers.names
    [decision] = decisions(job)
    assert decision.classifier == "local" and decision.classifier_version
    assert decision.tier == tier and decision.score is not None
    assert complete_job(rt, job) is None
    routing = read_job_view(job)["routing"]
    assert isinstance(routing, dict)
    assert routing["classifier"] == "local"
    assert routing["version"] == decision.classifier_version
    with session_scope() as session:
        purposes = dict(
            session.execute(
                select(ModelCall.purpose, func.count())
                .where(ModelCall.job_id == job)
                .group_by(ModelCall.purpose)
            ).all()
        )
        ran_on = session.get(Job, job)
        assert ran_on is not None and ran_on.tier == tier
    assert purposes == {"complete": 1}  # no classifier call to pay for


def test_a_redelivered_message_hands_the_job_on_without_routing_it_twice(rt: Runtime) -> None:
    job = submit("Summarise the plot of Hamlet in three sentences.")
    first = classify_job(rt, job)
    # The first delivery committed but died before enqueueing: the redelivery must
    # still hand the job to its tier, and must not write a second decision.
    assert classify_job(rt, job) == first
    assert len(decisions(job)) == 1
    assert complete_job(rt, job) is None
    assert classify_job(rt, job) is None  # finished: nothing left to do
    with session_scope() as session:
        done = session.get(Job, job)
        assert done is not None and done.status == JobStatus.SUCCEEDED
