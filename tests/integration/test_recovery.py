"""Recovery on real Postgres: leased jobs, lost broker messages, database errors."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any
from unittest import mock

import psycopg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, text

from tests.conftest import Services
from tests.steps import complete_job
from tierroute.config import LEASE_MARGIN_S
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.specs import JobSpec
from tierroute.domain.status import JobStatus
from tierroute.pipeline.recovery import LostMessageWatch, resend_unfinished
from tierroute.pipeline.steps import RetryLater, classify_job
from tierroute.runtime import Runtime, get_runtime
from tierroute.store import retry as dbretry
from tierroute.store import transitions
from tierroute.store.engine import raw_transaction, session_scope
from tierroute.store.jobs import create_job
from tierroute.store.models import Job, ModelCall
from tierroute.store.retry import retrying_transaction

pytestmark = pytest.mark.integration


@pytest.fixture
def rt(clean_db: Services, sim: RunningSimulator) -> Runtime:
    return get_runtime()


def submit(**fields: object) -> uuid.UUID:
    with session_scope() as session:
        job, _ = create_job(
            session, JobSpec(prompt="Convert 3 km to miles.", **fields), default_max_tokens=64
        )
        return job.id


def job(job_id: uuid.UUID) -> Job:
    with session_scope() as session:
        found = session.get(Job, job_id)
        assert found is not None
        return found


def completions(job_id: uuid.UUID) -> int:
    with session_scope() as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    ModelCall.job_id == job_id, ModelCall.purpose == "complete"
                )
            )
            or 0
        )


def expire_lease(job_id: uuid.UUID) -> None:
    with session_scope() as session:
        session.execute(
            text("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": job_id},
        )


def test_a_complete_message_meeting_a_live_lease_retries_when_it_ends(
    rt: Runtime, sim: RunningSimulator
) -> None:
    job_id = submit(force_tier="haiku")
    assert classify_job(rt, job_id) == "haiku"
    lease_s = rt.settings.request_timeout_s + LEASE_MARGIN_S
    with raw_transaction() as cur:  # another worker took it and is (or was) mid-call
        assert transitions.claim_for_complete(cur, job_id, lease_s) is not None
    retry = complete_job(rt, job_id)
    # Not dropped: the holder may be dead, and this may be the job's only message.
    assert isinstance(retry, RetryLater) and "leased" in retry.reason
    assert lease_s - 5 < retry.delay_s <= lease_s + 1
    assert retry.delay_s < rt.settings.visibility_timeout_s
    assert completions(job_id) == 0 and sum(sim.stats()["by_status"].values()) == 0
    expire_lease(job_id)  # the holder died; its lease ran out
    assert complete_job(rt, job_id) is None
    assert job(job_id).status == JobStatus.SUCCEEDED and completions(job_id) == 1
    assert complete_job(rt, job_id) is None  # finished: now a duplicate is dropped


def test_a_classify_message_meeting_a_live_lease_retries_when_it_ends(rt: Runtime) -> None:
    job_id = submit()
    lease_s = rt.settings.classify_timeout_s + LEASE_MARGIN_S
    with raw_transaction() as cur:
        assert transitions.claim_for_classify(cur, job_id, lease_s) is not None
    retry = classify_job(rt, job_id)
    assert isinstance(retry, RetryLater) and lease_s - 5 < retry.delay_s <= lease_s + 1
    expire_lease(job_id)
    assert classify_job(rt, job_id) in ("haiku", "sonnet", "opus")


def test_a_redriven_job_whose_classifier_died_mid_claim_is_routed_again(rt: Runtime) -> None:
    job_id = submit(force_tier="sonnet")
    assert classify_job(rt, job_id) == "sonnet"
    assert job(job_id).status == JobStatus.ROUTED
    # Re-driven, then claimed for classification by a worker that died before routing it.
    with session_scope() as session:
        session.execute(
            text("UPDATE jobs SET status = 'classifying' WHERE id = :id"), {"id": job_id}
        )
    lease_s = rt.settings.classify_timeout_s + LEASE_MARGIN_S
    with raw_transaction() as cur:
        assert transitions.claim_for_classify(cur, job_id, lease_s) is not None
    assert isinstance(classify_job(rt, job_id), RetryLater)  # held while its lease lasts
    expire_lease(job_id)
    assert classify_job(rt, job_id) == "sonnet"  # taken over, keeping its tier
    assert job(job_id).status == JobStatus.ROUTED and job(job_id).lease_expires_at is None
    assert complete_job(rt, job_id) is None
    assert job(job_id).status == JobStatus.SUCCEEDED


def test_resend_gives_each_unfinished_job_the_message_its_state_needs(rt: Runtime) -> None:
    sent_queued, unsent, routed, running, done = (submit(force_tier="sonnet") for _ in range(5))
    with session_scope() as session:
        session.execute(
            text("UPDATE jobs SET enqueued_at = now() WHERE id IN (:a, :b)"),
            {"a": sent_queued, "b": routed},
        )
    mid_classify = submit()
    with raw_transaction() as cur:
        transitions.claim_for_classify(cur, mid_classify, 30)  # classifying, no tier yet
    assert classify_job(rt, routed) == "sonnet"
    assert classify_job(rt, running) == "sonnet"
    with raw_transaction() as cur:
        transitions.claim_for_complete(cur, running, 60)
    assert classify_job(rt, done) == "sonnet" and complete_job(rt, done) is None

    classify: list[uuid.UUID] = []
    complete: list[tuple[uuid.UUID, str]] = []
    resent = resend_unfinished(classify.extend, complete.extend)

    assert classify == [mid_classify]
    assert sorted(complete) == sorted([(routed, "sonnet"), (running, "sonnet")])
    assert resent.queued == 1  # sent_queued goes back to the feeder; unsent was never sent
    assert job(sent_queued).enqueued_at is None and job(unsent).enqueued_at is None
    assert job(done).status == JobStatus.SUCCEEDED


class FakeMarker:
    def __init__(self) -> None:
        self.present = False
        self.marks = 0

    def intact(self) -> bool:
        return self.present

    def mark(self) -> None:
        self.present = True
        self.marks += 1


def test_the_watch_resends_when_the_marker_is_gone_and_until_a_resend_works(
    rt: Runtime,
) -> None:
    job_id = submit(force_tier="opus")
    assert classify_job(rt, job_id) == "opus"
    marker = FakeMarker()
    sent: list[Sequence[tuple[uuid.UUID, str]]] = []
    failing = [True]

    def send_complete(jobs: Sequence[tuple[uuid.UUID, str]]) -> None:
        if failing[0]:
            raise ConnectionError("broker still down")
        sent.append(list(jobs))

    watch = LostMessageWatch(marker, lambda ids: None, send_complete, interval_s=0)
    with pytest.raises(ConnectionError):
        watch.check()  # marker gone: mark first, then the resend fails
    assert marker.present and sent == []
    failing[0] = False
    resent = watch.check()  # the marker is back, but the resend is still owed
    assert resent is not None and resent.complete == 1 and sent == [[(job_id, "opus")]]
    assert watch.check() is None  # intact: nothing to do
    marker.present = False  # the broker restarted again
    assert watch.check() is not None and len(sent) == 2


def test_a_commit_retries_through_a_lost_connection_without_writing_twice(
    rt: Runtime,
) -> None:
    tries: list[bool] = []

    def work(cur: Any, retried: bool) -> str:
        tries.append(retried)
        cur.execute("SELECT 1")
        if len(tries) == 1:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return "kept"

    assert retrying_transaction(work, within_s=5) == "kept"
    assert tries == [False, True]

    def always_down(cur: Any, retried: bool) -> None:
        raise psycopg.OperationalError("connection refused")

    with pytest.raises(psycopg.OperationalError):
        retrying_transaction(always_down, within_s=0.3)


def test_a_connection_pool_that_stays_exhausted_is_waited_out(rt: Runtime) -> None:
    # A pool checkout that timed out (every connection busy) once left a job whose
    # call was made running, with its message acknowledged; now the write retries.
    tries: list[bool] = []

    def work(cur: Any, retried: bool) -> str:
        tries.append(retried)
        if len(tries) == 1:
            raise sa_exc.TimeoutError("QueuePool limit of size 24 overflow 0 reached")
        return "kept"

    assert retrying_transaction(work, within_s=5) == "kept"
    assert tries == [False, True]


def test_tasks_retry_database_errors_instead_of_failing(rt: Runtime) -> None:
    from worker import tasks

    job_id = submit(force_tier="haiku")
    real = tasks.classify_job
    calls: list[int] = []

    def flaky(runtime: Runtime, job: uuid.UUID) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise psycopg.OperationalError("terminating connection due to administrator command")
        return real(runtime, job)

    # Eager apply: this checks the task's error mapping, not the queue.
    with (
        mock.patch.object(tasks, "classify_job", flaky),
        mock.patch.object(tasks.complete, "apply_async") as handed_on,
        mock.patch.object(dbretry, "DATABASE_RETRY_S", 0.0),
    ):
        result = tasks.classify.apply(args=[str(job_id)])
    assert result.successful(), result.traceback
    assert len(calls) == 2
    handed_on.assert_called_once_with(args=[str(job_id)], queue="haiku")
