"""A tier message carrying several jobs: each answered once, side by side; waits go on alone."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any
from unittest import mock

import psycopg
import pytest
from sqlalchemy import select

from tests.conftest import Services
from tests.integration.test_classify_batch import PROMPTS, configure, load_job, set_job, submit_all
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.status import JobStatus
from tierroute.pipeline.classify_chunk import classify_batch
from tierroute.runtime import Runtime, client_name
from tierroute.store import transitions
from tierroute.store.engine import raw_autocommit, raw_transaction, session_scope
from tierroute.store.models import ModelCall
from tierroute.store.retry import DATABASE_RETRY_S
from worker import call_loop, tasks

pytestmark = pytest.mark.integration


@pytest.fixture
def rt(clean_db: Services, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.delenv("TIERROUTE_DAILY_BUDGET_USD", raising=False)
    return configure(monkeypatch, classifier="local")


def routed_by_tier(rt: Runtime, prompts: list[str]) -> dict[str, list[uuid.UUID]]:
    routing = classify_batch(rt, submit_all(prompts))
    by_tier: dict[str, list[uuid.UUID]] = {}
    for job_id, tier in routing.hand_on:
        by_tier.setdefault(tier, []).append(job_id)
    return by_tier


def complete_calls_by_job() -> Counter[uuid.UUID]:
    with session_scope() as session:
        return Counter(
            session.scalars(select(ModelCall.job_id).where(ModelCall.purpose == "complete"))
        )


def test_every_job_of_a_chunk_is_answered_once_on_its_tier(rt: Runtime) -> None:
    by_tier = routed_by_tier(rt, PROMPTS)
    assert len(by_tier) == 3  # the prompts span the tiers (test_classify_batch)
    for tier, ids in by_tier.items():
        tasks.complete_many.run([str(job_id) for job_id in ids], tier)
    every = [job_id for ids in by_tier.values() for job_id in ids]
    assert complete_calls_by_job() == Counter(every)
    for tier, ids in by_tier.items():
        for job_id in ids:
            job = load_job(job_id)
            assert job.status == JobStatus.SUCCEEDED and job.tier == tier and job.result_text
    # A redelivered chunk (its worker died before the ack) calls nobody again.
    for tier, ids in by_tier.items():
        tasks.complete_many.run([str(job_id) for job_id in ids], tier)
    assert complete_calls_by_job() == Counter(every)


def test_a_chunks_calls_wait_on_the_event_loop_side_by_side(
    rt: Runtime, sim: RunningSimulator
) -> None:
    tier, ids = max(routed_by_tier(rt, PROMPTS).items(), key=lambda item: len(item[1]))
    assert len(ids) >= 3
    sim.configure(default_latency_ms=300)
    tasks.complete_many.run([str(job_id) for job_id in ids], tier)
    # One Celery thread, yet every call of the chunk was in flight at once,
    # under the process's name (the benchmark counts calls in flight by it).
    peaks = sim.stats()["peak_in_flight_by_client"]
    assert peaks == {client_name("tiers"): len(ids)}
    assert complete_calls_by_job() == Counter(ids)


def test_a_job_another_worker_holds_goes_on_as_a_message_of_its_own(rt: Runtime) -> None:
    tier, ids = max(routed_by_tier(rt, PROMPTS).items(), key=lambda item: len(item[1]))
    assert len(ids) >= 2
    held, *others = ids
    set_job(held, "status = 'running', lease_expires_at = now() + interval '1 hour'")
    with mock.patch.object(tasks.complete, "apply_async") as sent:
        tasks.complete_many.run([str(job_id) for job_id in ids], tier)
    assert complete_calls_by_job() == Counter(others)  # the chunk's other jobs went ahead
    assert load_job(held).status == JobStatus.RUNNING
    sent.assert_called_once()
    assert sent.call_args.kwargs["args"] == [str(held)]
    assert sent.call_args.kwargs["queue"] == tier
    assert sent.call_args.kwargs["countdown"] > 3000  # not before the holder's lease runs out


def test_a_job_the_database_failed_goes_on_alone_and_the_others_finish(rt: Runtime) -> None:
    tier, ids = max(routed_by_tier(rt, PROMPTS).items(), key=lambda item: len(item[1]))
    broken, *others = ids
    real = call_loop.claim_call

    def flaky(runtime: Runtime, job_id: uuid.UUID) -> Any:
        if job_id == broken:
            raise psycopg.OperationalError("terminating connection due to administrator command")
        return real(runtime, job_id)

    with (
        mock.patch.object(call_loop, "claim_call", flaky),
        mock.patch.object(tasks.complete, "apply_async") as sent,
    ):
        tasks.complete_many.run([str(job_id) for job_id in ids], tier)
    assert complete_calls_by_job() == Counter(others)
    sent.assert_called_once()
    assert sent.call_args.kwargs["args"] == [str(broken)]
    assert 0 < sent.call_args.kwargs["countdown"] <= 1.5 * DATABASE_RETRY_S


def test_routed_jobs_become_messages_of_one_tier_and_bounded_size() -> None:
    jobs = [(uuid.uuid4(), tier) for tier in ["haiku"] * 5 + ["opus"] * 2 + ["haiku"] * 2]
    messages = tasks.tier_messages(jobs, per_message=3)
    assert [(tier, len(ids)) for tier, ids in messages] == [
        ("haiku", 3),
        ("haiku", 3),
        ("haiku", 1),
        ("opus", 2),
    ]
    sent = [job_id for _, ids in messages for job_id in ids]
    assert sorted(sent) == sorted(str(job_id) for job_id, _ in jobs)
    singles = tasks.tier_messages(jobs, per_message=1)
    assert len(singles) == len(jobs) and all(len(ids) == 1 for _, ids in singles)


def test_the_claim_commits_without_a_wal_wait_and_leaves_the_connection_durable(
    rt: Runtime,
) -> None:
    _, ids = next(iter(routed_by_tier(rt, PROMPTS[:1]).items()))
    with raw_transaction() as cur:
        assert transitions.claim_for_complete(cur, ids[0], 60.0) is not None
        cur.execute("SHOW synchronous_commit")
        assert cur.fetchone()[0] == "off"  # for the claim's own transaction
    with raw_autocommit() as cur:
        cur.execute("SHOW synchronous_commit")
        assert cur.fetchone()[0] == "on"  # results still wait for the WAL
    assert load_job(ids[0]).status == JobStatus.RUNNING
