"""classify → complete on real Postgres with the real SDK against the simulator."""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from tests.conftest import Services, clear_rate_limits
from tests.steps import complete_job
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.decisions import MANUAL_OVERRIDE
from tierroute.domain.errors import Conflict
from tierroute.domain.specs import JobSpec
from tierroute.domain.status import JobStatus
from tierroute.pipeline.steps import classify_job
from tierroute.runtime import Runtime, get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.job_reads import read_job_view
from tierroute.store.jobs import create_job, rate_job, retry_job
from tierroute.store.models import ModelCall, RoutingDecision

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _llm_classifier(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests are about the Haiku classifier's call (billing, faults, limits,
    # logs); the default classifier is the local one, which makes no call.
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "llm")


LESSON_EXAMPLES = {
    "haiku": 'Format this JSON: {"name":"John","age":30}',
    "sonnet": "Write a Python function to merge two sorted lists into one sorted list",
    "opus": (
        "Review this distributed system architecture for scalability bottlenecks, "
        "consistency trade-offs, and failure modes: three API nodes, one Postgres primary, "
        "Redis for sessions, and a nightly batch that rebuilds the search index."
    ),
}


@pytest.fixture
def rt(clean_db: Services, sim: RunningSimulator) -> Runtime:
    return get_runtime()


def submit(prompt: str, **fields: object) -> uuid.UUID:
    with session_scope() as session:
        job, _ = create_job(session, JobSpec(prompt=prompt, **fields), default_max_tokens=256)
        return job.id


def run(rt: Runtime, job_id: uuid.UUID) -> dict[str, object]:
    tier = classify_job(rt, job_id)
    assert tier is not None
    assert complete_job(rt, job_id) is None
    return read_job_view(job_id)


@pytest.mark.parametrize("tier", ["haiku", "sonnet", "opus"])
def test_lesson_examples_reach_their_tier_with_costs(rt: Runtime, tier: str) -> None:
    view = run(rt, submit(LESSON_EXAMPLES[tier]))
    assert view["status"] == JobStatus.SUCCEEDED
    assert view["tier"] == tier
    assert view["model"] == rt.tiers.get(tier).model
    assert str(view["result"]).startswith("[simulated")
    routing = view["routing"]
    assert isinstance(routing, dict)
    assert routing["classifier"] == "llm" and routing["confidence"] >= 0.7
    assert routing["reasoning"]
    cost, if_opus = float(view["cost_usd"]), float(view["cost_if_opus_usd"])  # type: ignore[arg-type]
    assert cost > 0 and view["classifier_cost_usd"] > 0  # type: ignore[operator]
    assert view["savings_usd"] == pytest.approx(if_opus - cost)
    assert view["simulated"] is True
    for stamp in ("created_at", "classified_at", "started_at", "finished_at"):
        assert view[stamp] is not None


def test_the_classifier_call_is_billed_and_counts_in_the_totals(rt: Runtime) -> None:
    job_id = submit(LESSON_EXAMPLES["haiku"])
    run(rt, job_id)
    with session_scope() as session:
        calls = session.scalars(select(ModelCall).where(ModelCall.job_id == job_id)).all()
        purposes = sorted(c.purpose for c in calls)
        assert purposes == ["classify", "complete"]
        classify_call = next(c for c in calls if c.purpose == "classify")
        assert classify_call.model == "claude-haiku-4-5"
        assert classify_call.cost_usd > 0
        assert classify_call.cost_if_opus_usd == 0  # no router in the all-Opus baseline
        complete_call = next(c for c in calls if c.purpose == "complete")
        assert complete_call.cost_if_opus_usd == 5 * complete_call.cost_usd  # haiku → opus
        session.execute(text("SELECT tierroute_rollup_fold()"))  # as the beat does
        total = session.execute(text("SELECT total_cost_usd FROM savings")).scalar_one()
        assert total == classify_call.cost_usd + complete_call.cost_usd


def test_force_tier_skips_the_classifier(rt: Runtime, sim: RunningSimulator) -> None:
    view = run(rt, submit(LESSON_EXAMPLES["haiku"], force_tier=3))
    assert view["tier"] == "opus"
    routing = view["routing"]
    assert isinstance(routing, dict)
    assert routing["confidence"] == 1.0 and routing["reasoning"] == MANUAL_OVERRIDE
    assert view["classifier_cost_usd"] == 0
    assert "claude-haiku-4-5" not in sim.stats()["by_model"]


def test_low_confidence_goes_to_the_default_tier_with_its_cost_ratio(rt: Runtime) -> None:
    strict = replace(rt, policy=replace(rt.policy, confidence_threshold=0.999))
    strict.classifier = replace_policy(rt, strict.policy)
    view = run(strict, submit(LESSON_EXAMPLES["haiku"]))
    routing = view["routing"]
    assert isinstance(routing, dict)
    assert view["tier"] == "sonnet" and routing["proposed_tier"] == "haiku"
    assert "below threshold" in str(routing["fallback_reason"])
    assert routing["cost_ratio"] == pytest.approx(0.6)


def replace_policy(rt: Runtime, policy: object) -> object:
    from tierroute.classify import LlmClassifier

    return LlmClassifier(rt.client, rt.tiers, policy, simulated=True, timeout_s=5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"classifier_fault": "malformed"}, "unparseable classifier output"),
        ({"classifier_fault": "refusal"}, "classifier refused"),
        ({"fault_sequence": [529]}, "classifier call failed"),
        ({"fault_sequence": [500]}, "classifier call failed"),
    ],
)
def test_classifier_failures_route_to_the_default_tier(
    rt: Runtime, sim: RunningSimulator, fault: dict[str, object], reason: str
) -> None:
    sim.configure(**fault)
    view = run(rt, submit(LESSON_EXAMPLES["opus"]))
    routing = view["routing"]
    assert isinstance(routing, dict)
    assert view["status"] == JobStatus.SUCCEEDED
    assert view["tier"] == rt.settings.default_tier
    assert reason in str(routing["fallback_reason"])


def test_classifier_timeout_falls_back(rt: Runtime, sim: RunningSimulator) -> None:
    sim.configure(fault_sequence=[0], timeout_sleep_s=3)
    fast = replace(rt)
    fast.classifier = _classifier_with_timeout(rt, 0.5)
    view = run(fast, submit(LESSON_EXAMPLES["opus"]))
    routing = view["routing"]
    assert isinstance(routing, dict)
    assert "timed out" in str(routing["fallback_reason"])


def _classifier_with_timeout(rt: Runtime, timeout_s: float) -> object:
    from tierroute.classify import LlmClassifier

    return LlmClassifier(rt.client, rt.tiers, rt.policy, simulated=True, timeout_s=timeout_s)  # type: ignore[return-value]


def test_rate_limit_asks_for_a_retry_no_sooner_than_retry_after(
    rt: Runtime, sim: RunningSimulator
) -> None:
    job_id = submit(LESSON_EXAMPLES["haiku"], force_tier=1)
    assert classify_job(rt, job_id) == "haiku"
    sim.configure(fault_sequence=[429], retry_after_s=7)
    retry = complete_job(rt, job_id)
    assert retry is not None and retry.delay_s >= 7
    view = read_job_view(job_id)
    assert view["status"] == JobStatus.RUNNING and "429" in str(view["error"])
    early = complete_job(rt, job_id)  # the shared cooldown holds back an early retry
    assert early is not None and "cooldown" in early.reason
    clear_rate_limits(rt.settings.broker_url or "")  # as if retry-after had passed
    assert complete_job(rt, job_id) is None  # the retry succeeds
    view = read_job_view(job_id)
    assert view["status"] == JobStatus.SUCCEEDED and view["attempts"] == 2


def test_a_bad_request_fails_the_job_without_retry(rt: Runtime, sim: RunningSimulator) -> None:
    job_id = submit(LESSON_EXAMPLES["haiku"], force_tier=1)
    classify_job(rt, job_id)
    sim.configure(fault_sequence=[400])
    assert complete_job(rt, job_id) is None
    view = read_job_view(job_id)
    assert view["status"] == JobStatus.FAILED
    assert "HTTP 400" in str(view["error"])
    assert view["attempts"] == 1


def test_attempts_are_capped(rt: Runtime, sim: RunningSimulator) -> None:
    job_id = submit(LESSON_EXAMPLES["haiku"], force_tier=1)
    classify_job(rt, job_id)
    sim.configure(fault_sequence=[529] * rt.settings.max_attempts)
    for _ in range(rt.settings.max_attempts - 1):
        assert complete_job(rt, job_id) is not None
    assert complete_job(rt, job_id) is None
    view = read_job_view(job_id)
    assert view["status"] == JobStatus.DEAD
    assert view["attempts"] == rt.settings.max_attempts
    assert f"gave up after {rt.settings.max_attempts} attempts" in str(view["error"])


def test_a_dead_job_is_retried_on_its_tier_without_a_second_classification(
    rt: Runtime, sim: RunningSimulator
) -> None:
    job_id = submit(LESSON_EXAMPLES["opus"])
    assert classify_job(rt, job_id) == "opus"
    sim.configure(fault_sequence=[529] * rt.settings.max_attempts)
    while complete_job(rt, job_id) is not None:
        pass
    with session_scope() as session:
        retry_job(session, job_id)
    with session_scope() as session, pytest.raises(Conflict, match="only failed or dead"):
        retry_job(session, job_id)  # already queued again
    assert classify_job(rt, job_id) == "opus"  # keeps its routing
    assert complete_job(rt, job_id) is None
    view = read_job_view(job_id)
    with session_scope() as session:
        decisions = session.scalar(select(func.count()).where(RoutingDecision.job_id == job_id))
        classify_calls = session.scalar(
            select(func.count()).where(ModelCall.job_id == job_id, ModelCall.purpose == "classify")
        )
    assert view["status"] == JobStatus.SUCCEEDED and view["attempts"] == 1
    assert (decisions, classify_calls) == (1, 1)


def test_429_without_retry_after_backs_off_exponentially(
    rt: Runtime, sim: RunningSimulator
) -> None:
    job_id = submit(LESSON_EXAMPLES["haiku"], force_tier=1)
    classify_job(rt, job_id)
    sim.configure(fault_sequence=[429, 429], retry_after_s=None)
    first = complete_job(rt, job_id)
    second = complete_job(rt, job_id)
    assert first is not None and second is not None
    assert first.delay_s == rt.settings.retry_backoff_base_s
    assert second.delay_s == 2 * rt.settings.retry_backoff_base_s


@pytest.mark.parametrize("status", [500, 0])  # 0: the simulator hangs past the timeout
def test_server_errors_and_read_timeouts_are_retried(
    rt: Runtime, sim: RunningSimulator, status: int
) -> None:
    quick = replace(rt, client=rt.client.with_options(timeout=0.5))
    job_id = submit(LESSON_EXAMPLES["haiku"], force_tier=1)
    classify_job(quick, job_id)
    sim.configure(fault_sequence=[status], timeout_sleep_s=2)
    retry = complete_job(quick, job_id)
    assert retry is not None
    assert ("timed out" if status == 0 else "HTTP 500") in retry.reason
    assert complete_job(quick, job_id) is None
    assert read_job_view(job_id)["status"] == JobStatus.SUCCEEDED


def test_redelivered_messages_do_no_harm(rt: Runtime) -> None:
    job_id = submit(LESSON_EXAMPLES["sonnet"])
    assert classify_job(rt, job_id) == "sonnet"
    # A second classify delivery hands the routed job on again but does not re-route.
    assert classify_job(rt, job_id) == "sonnet"
    assert complete_job(rt, job_id) is None
    assert complete_job(rt, job_id) is None
    assert classify_job(rt, job_id) is None
    with session_scope() as session:
        decisions = session.scalar(select(func.count()).where(RoutingDecision.job_id == job_id))
        completes = session.scalar(
            select(func.count()).where(ModelCall.job_id == job_id, ModelCall.purpose == "complete")
        )
    assert (decisions, completes) == (1, 1)


def test_views_agree_with_sums_over_model_calls(rt: Runtime) -> None:
    ids = {tier: submit(prompt) for tier, prompt in LESSON_EXAMPLES.items()}
    for job_id in ids.values():
        run(rt, job_id)
    with session_scope() as session:
        rate_job(session, ids["opus"], 0.9, "thorough")
        rate_job(session, ids["opus"], 0.7)
        rate_job(session, ids["haiku"], 1.0)
    with session_scope() as session:
        total, if_opus = session.execute(
            select(func.sum(ModelCall.cost_usd), func.sum(ModelCall.cost_if_opus_usd))
        ).one()
        session.execute(text("SELECT tierroute_rollup_fold()"))  # as the beat does
        savings = session.execute(text("SELECT * FROM savings")).mappings().one()
        assert savings["total_cost_usd"] == total
        assert savings["cost_if_all_opus_usd"] == if_opus
        assert savings["saved_usd"] == if_opus - total
        assert savings["jobs"] == 3
        by_day = session.execute(
            text("SELECT sum(cost_usd), sum(calls) FROM cost_by_tier_day")
        ).one()
        assert by_day == (total, 6)
        per_tier = dict(
            session.execute(
                text("SELECT tier, sum(cost_usd) FROM cost_by_tier_day GROUP BY tier")
            ).all()
        )
        model_tiers = dict(
            session.execute(
                select(ModelCall.tier, func.sum(ModelCall.cost_usd)).group_by(ModelCall.tier)
            ).all()
        )
        assert per_tier == model_tiers
        quality = {
            row["tier"]: row
            for row in session.execute(text("SELECT * FROM tier_quality")).mappings()
        }
        assert quality["opus"]["ratings"] == 2 and quality["opus"]["rated_jobs"] == 1
        assert quality["opus"]["avg_satisfaction"] == pytest.approx(0.8)
        assert quality["haiku"]["avg_satisfaction"] == pytest.approx(1.0)
        assert quality["sonnet"]["rated_jobs"] == 0
        complete_cost = session.scalar(
            select(func.sum(ModelCall.cost_usd)).where(
                ModelCall.purpose == "complete", ModelCall.job_id == ids["opus"]
            )
        )
        assert quality["opus"]["cost_usd"] == complete_cost
        assert isinstance(complete_cost, Decimal)
