"""Routing a chunk of jobs in one read and one write, and the one-job path it falls back to."""

from __future__ import annotations

import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text

from tests.conftest import Services, clear_settings_caches
from tests.steps import complete_job
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.specs import JobSpec
from tierroute.domain.status import BatchMode, JobStatus
from tierroute.pipeline.budgets import worst_case_cost
from tierroute.pipeline.classify_chunk import classify_batch
from tierroute.pipeline.steps import classify_job
from tierroute.runtime import Runtime, get_runtime
from tierroute.store import leases, transitions
from tierroute.store.engine import raw_autocommit, session_scope
from tierroute.store.ingest import copy_batch
from tierroute.store.jobs import cancel_batch, create_job, retry_job
from tierroute.store.models import Job, ModelCall, RoutingDecision

pytestmark = pytest.mark.integration

# The local classifier spreads these over all three tiers (checked in the first test).
PROMPTS = [
    'Format this JSON: {"name":"John","age":30}',
    "What is the capital of France?",
    "Write a Python function to merge two sorted lists into one sorted list",
    "Summarise the plot of Hamlet in three sentences.",
    "Translate 'good morning' into Spanish.",
    "Fix the typo in this sentence: 'Teh cat sat on the mat.'",
    "Explain the difference between a process and a thread, with examples in Python.",
    "Prove that there are infinitely many primes and discuss the implications for cryptography.",
    (
        "Review this distributed system architecture for scalability bottlenecks, "
        "consistency trade-offs, and failure modes: three API nodes, one Postgres primary, "
        "Redis for sessions, and a nightly batch that rebuilds the search index."
    ),
    (
        "Design a multi-region active-active database replication strategy for a payments "
        "platform. Explain how write conflicts are resolved, analyse its failure modes under "
        "network partitions, and compare it with a single-leader design."
    ),
]
MAX_TOKENS = 256


def configure(monkeypatch: pytest.MonkeyPatch, **settings: object) -> Runtime:
    """A fresh runtime with these TIERROUTE_* settings."""
    for name, value in settings.items():
        monkeypatch.setenv(f"TIERROUTE_{name.upper()}", str(value))
    clear_settings_caches()
    return get_runtime()


@pytest.fixture
def rt(clean_db: Services, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """A runtime with the in-process (local) classifier, so chunks take the batch path."""
    monkeypatch.delenv("TIERROUTE_DAILY_BUDGET_USD", raising=False)
    runtime = configure(monkeypatch, classifier="local")
    assert runtime.classifier.in_process
    return runtime


def submit(prompt: str, **fields: object) -> uuid.UUID:
    spec = JobSpec(prompt=prompt, **fields)  # type: ignore[arg-type]
    with session_scope() as session:
        job, _ = create_job(session, spec, default_max_tokens=MAX_TOKENS)
        return job.id


def submit_all(prompts: list[str]) -> list[uuid.UUID]:
    return [submit(prompt) for prompt in prompts]


def submit_batch(prompts: list[str], mode: BatchMode) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """Jobs inserted as one batch, as the ingest path does (batch mode sets jobs.batch_api)."""
    specs = [JobSpec(prompt=prompt) for prompt in prompts]
    with session_scope() as session:
        batch_id, _ = copy_batch(session, specs, default_max_tokens=MAX_TOKENS, mode=mode)
    with session_scope() as session:
        rows = session.execute(select(Job.prompt, Job.id).where(Job.batch_id == batch_id)).all()
    # Ids in the order of `prompts`: the rows come back in whatever order the plan reads them.
    id_of = {prompt: job_id for prompt, job_id in rows}
    return batch_id, [id_of[prompt] for prompt in prompts]


def load_job(job_id: uuid.UUID) -> Job:
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def decisions(job_id: uuid.UUID) -> list[RoutingDecision]:
    with session_scope() as session:
        rows = list(
            session.scalars(select(RoutingDecision).where(RoutingDecision.job_id == job_id))
        )
        session.expunge_all()
        return rows


def decision_count() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(RoutingDecision)) or 0)


def call_count() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(ModelCall)) or 0)


def set_job(job_id: uuid.UUID, assignments: str) -> None:
    """Move a job by hand, as another worker or a crash would have left it."""
    with session_scope() as session:
        session.execute(text(f"UPDATE jobs SET {assignments} WHERE id = :id"), {"id": job_id})


def assert_routed(job_id: uuid.UUID, tier: str, classifier: str = "local") -> None:
    """The job holds `tier`, waits for its tier step, and has exactly one decision saying so."""
    job = load_job(job_id)
    assert job.status == JobStatus.ROUTED
    assert job.tier == tier
    assert job.classified_at is not None
    assert job.lease_expires_at is None
    [decision] = decisions(job_id)
    assert decision.tier == tier
    assert decision.classifier == classifier
    if classifier == "local":
        assert decision.classifier_version


def assert_untouched(job_id: uuid.UUID, status: JobStatus) -> None:
    job = load_job(job_id)
    assert job.status == status
    assert job.tier is None and job.classified_at is None
    assert decisions(job_id) == []


def route_whole_chunk(rt: Runtime, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Classify PROMPTS' jobs as one chunk; each is handed on once, on its classifier's tier."""
    routing = classify_batch(rt, ids)
    assert routing.on_their_own == []
    assert Counter(job_id for job_id, _ in routing.hand_on) == Counter(ids)
    handed = dict(routing.hand_on)
    for job_id, prompt in zip(ids, PROMPTS, strict=True):
        assert handed[job_id] == rt.classifier.classify(prompt).tier
        assert_routed(job_id, handed[job_id])
    return handed


def test_a_chunk_of_queued_jobs_is_routed_and_handed_on_once_each(rt: Runtime) -> None:
    ids = submit_all(PROMPTS)
    handed = route_whole_chunk(rt, ids)
    assert set(handed.values()) == set(rt.tiers.names)  # the chunk really spans the tiers
    assert decision_count() == len(ids)
    assert call_count() == 0  # the local classifier bills nothing
    # The routed state is exactly what the tier step claims.
    first, tier = next(iter(handed.items()))
    assert complete_job(rt, first) is None
    done = load_job(first)
    assert done.status == JobStatus.SUCCEEDED and done.tier == tier and done.result_text


def test_duplicate_ids_in_a_chunk_route_the_job_once(rt: Runtime) -> None:
    job, other = submit_all(PROMPTS[:2])
    routing = classify_batch(rt, [job, other, job, job])
    assert [job_id for job_id, _ in routing.hand_on] == [job, other]
    assert routing.on_their_own == []
    assert len(decisions(job)) == 1 and len(decisions(other)) == 1


def test_a_redelivered_chunk_hands_every_job_on_again_without_a_second_decision(
    rt: Runtime,
) -> None:
    ids = submit_all(PROMPTS)
    first = classify_batch(rt, ids)
    # The first delivery committed but died before enqueueing: the jobs must still reach
    # their tiers, on the tiers already chosen.
    again = classify_batch(rt, ids)
    assert again.on_their_own == []
    assert sorted(again.hand_on) == sorted(first.hand_on)
    assert decision_count() == len(ids)
    for job_id, tier in first.hand_on:
        assert_routed(job_id, tier)


def test_a_redriven_job_keeps_its_routing(rt: Runtime) -> None:
    redriven, queued = submit_all(PROMPTS[:2])
    [(_, tier)] = classify_batch(rt, [redriven]).hand_on
    # Its tier step gave up; a retry puts it back in the queue with its routing kept.
    set_job(redriven, "status = 'dead', error = 'gave up', finished_at = now()")
    with session_scope() as session:
        retry_job(session, redriven)
    assert load_job(redriven).status == JobStatus.QUEUED
    routing = classify_batch(rt, [redriven, queued])
    assert routing.on_their_own == []
    assert dict(routing.hand_on) == {
        redriven: tier,
        queued: rt.classifier.classify(PROMPTS[1]).tier,
    }
    assert_routed(redriven, tier)
    assert decision_count() == 2


def test_cancelled_and_missing_jobs_are_left_alone(rt: Runtime) -> None:
    batch_id, [cancelled] = submit_batch(PROMPTS[:1], BatchMode.LIVE)
    with session_scope() as session:
        assert cancel_batch(session, batch_id) == 1
    queued = submit(PROMPTS[2])
    missing = uuid.uuid4()
    routing = classify_batch(rt, [cancelled, missing, queued])
    assert routing.on_their_own == []
    assert routing.hand_on == [(queued, rt.classifier.classify(PROMPTS[2]).tier)]
    assert_untouched(cancelled, JobStatus.CANCELLED)
    assert decision_count() == 1


def test_a_forced_tier_wins_over_the_classifier(rt: Runtime) -> None:
    hard, easy = PROMPTS[-1], PROMPTS[0]
    assert rt.classifier.classify(hard).tier == "opus"
    assert rt.classifier.classify(easy).tier == "haiku"
    down, up, free = submit(hard, force_tier="haiku"), submit(easy, force_tier="opus"), submit(hard)
    routing = classify_batch(rt, [down, up, free])
    assert dict(routing.hand_on) == {down: "haiku", up: "opus", free: "opus"}
    assert_routed(down, "haiku", classifier="manual")
    assert_routed(up, "opus", classifier="manual")
    assert_routed(free, "opus")


def test_a_batch_mode_job_is_routed_but_waits_for_its_message_batch(rt: Runtime) -> None:
    _, batch_mode = submit_batch(PROMPTS[:3], BatchMode.BATCH_API)
    live = submit(PROMPTS[3])
    assert all(load_job(job_id).batch_api for job_id in batch_mode)
    routing = classify_batch(rt, [*batch_mode, live])
    assert routing.hand_on == [(live, rt.classifier.classify(PROMPTS[3]).tier)]
    assert routing.on_their_own == []
    for job_id, prompt in zip(batch_mode, PROMPTS[:3], strict=True):
        assert_routed(job_id, rt.classifier.classify(prompt).tier)
    # A redelivered chunk must not send them to a tier queue either.
    again = classify_batch(rt, [*batch_mode, live])
    assert [job_id for job_id, _ in again.hand_on] == [live]
    # The tier step must not take it either: its Message Batch answers it.
    assert complete_job(rt, batch_mode[0]) is None
    assert load_job(batch_mode[0]).status == JobStatus.ROUTED


def test_a_job_another_worker_holds_is_retried_after_its_lease(rt: Runtime) -> None:
    held, queued = submit_all(PROMPTS[:2])
    set_job(held, "status = 'classifying', lease_expires_at = now() + interval '1 hour'")
    routing = classify_batch(rt, [held, queued])
    assert [job_id for job_id, _ in routing.hand_on] == [queued]
    [(job_id, delay_s)] = routing.on_their_own
    assert job_id == held and delay_s > 1.0  # not before the holder's lease runs out
    assert_untouched(held, JobStatus.CLASSIFYING)


def test_a_job_whose_classifier_died_is_routed_by_the_one_job_path(rt: Runtime) -> None:
    orphan, queued = submit_all(PROMPTS[:2])
    set_job(orphan, "status = 'classifying', lease_expires_at = now() - interval '1 minute'")
    routing = classify_batch(rt, [orphan, queued])
    assert routing.on_their_own == []
    handed = dict(routing.hand_on)
    assert set(handed) == {orphan, queued}
    assert_routed(orphan, rt.classifier.classify(PROMPTS[0]).tier)
    assert_routed(queued, rt.classifier.classify(PROMPTS[1]).tier)


def test_route_queued_claims_only_jobs_still_queued(rt: Runtime) -> None:
    batch_id, [cancelled_since] = submit_batch(PROMPTS[:1], BatchMode.LIVE)
    queued, routed_since = submit_all(PROMPTS[1:3])
    with raw_autocommit() as cur:
        rows = leases.read_for_classify(cur, [cancelled_since, queued, routed_since, uuid.uuid4()])
    assert {row.id for row in rows} == {cancelled_since, queued, routed_since}
    assert all(row.status == JobStatus.QUEUED and row.tier is None for row in rows)
    # Between the read and the write, one job is cancelled and a duplicate message routes another.
    with session_scope() as session:
        cancel_batch(session, batch_id)
    assert classify_job(rt, routed_since) is not None
    decided = [
        (row.id, rt.classifier.classify(row.prompt, row.system))
        for row in rows
        if row.id != routed_since
    ]
    decided.append((routed_since, rt.policy.manual(rt.tiers.get("opus"))))
    with raw_autocommit() as cur:
        assert transitions.route_queued(cur, decided) == {queued}
        assert transitions.route_queued(cur, []) == set()
    assert_routed(queued, rt.classifier.classify(PROMPTS[1]).tier)
    assert_untouched(cancelled_since, JobStatus.CANCELLED)
    [kept] = decisions(routed_since)
    assert kept.classifier == "local"  # the late batch write did not overwrite it
    assert load_job(routed_since).tier == kept.tier


def test_a_job_cancelled_after_the_chunk_was_read_is_not_handed_on(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id, [cancelled] = submit_batch(PROMPTS[:1], BatchMode.LIVE)
    queued = submit(PROMPTS[2])
    read = leases.read_for_classify

    def read_then_cancel(cur: Any, ids: list[uuid.UUID]) -> list[Any]:
        rows = read(cur, ids)
        with session_scope() as session:  # a cancel committed by another connection
            assert cancel_batch(session, batch_id) == 1
        return rows

    monkeypatch.setattr(leases, "read_for_classify", read_then_cancel)
    routing = classify_batch(rt, [cancelled, queued])
    assert routing.hand_on == [(queued, rt.classifier.classify(PROMPTS[2]).tier)]
    assert routing.on_their_own == []
    assert_untouched(cancelled, JobStatus.CANCELLED)


def test_a_chunk_goes_one_by_one_and_still_routes_while_a_budget_applies(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = configure(monkeypatch, classifier="local", daily_budget_usd=1000)
    assert rt.budgets.applies(None)  # a global budget needs no query to apply
    ids = submit_all(PROMPTS)
    route_whole_chunk(rt, ids)
    assert call_count() == 0


def test_a_chunk_is_held_to_the_budget(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    opus = rt.tiers.get("opus")
    first_cost, second_cost = (worst_case_cost(opus, p, None, MAX_TOKENS) for p in PROMPTS[-2:])
    # Room for the first Opus job's worst case, not for both: the chunk must not route both.
    budget = float(first_cost + second_cost / Decimal(2))
    rt = configure(monkeypatch, classifier="local", daily_budget_usd=budget, budget_policy="reject")
    first, second = submit_all(PROMPTS[-2:])
    assert [rt.classifier.classify(p).tier for p in PROMPTS[-2:]] == ["opus", "opus"]
    routing = classify_batch(rt, [first, second])
    assert routing.hand_on == [(first, "opus")]
    assert routing.on_their_own == []
    assert_routed(first, "opus")
    rejected = load_job(second)
    assert rejected.status == JobStatus.FAILED
    assert rejected.error is not None and rejected.error.startswith("budget_exceeded")
    [decision] = decisions(second)
    assert decision.budget_action == "rejected"


def test_a_classifier_that_calls_a_model_sends_every_job_on_its_own(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = configure(monkeypatch, classifier="llm")
    assert not rt.classifier.in_process
    ids = submit_all(PROMPTS[:4])
    routing = classify_batch(rt, [*ids, ids[0]])
    assert routing.hand_on == []
    assert routing.on_their_own == [(job_id, 0.0) for job_id in ids]
    for job_id in ids:
        assert_untouched(job_id, JobStatus.QUEUED)
    assert call_count() == 0  # no classifier call was made in the chunk
