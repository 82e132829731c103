"""Daily budgets are ceilings: no key's billed spend passes its budget (real Postgres, simulator).

Each test drives the pipeline's own steps (classify_job, complete_job) against the
simulator and checks what was billed in model_calls against the budget.
"""

from __future__ import annotations

import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import Services
from tests.steps import complete_job
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.budget import BudgetPolicy
from tierroute.domain.specs import JobSpec
from tierroute.domain.status import JobStatus
from tierroute.pipeline.budgets import BudgetGuard, worst_case_cost
from tierroute.pipeline.steps import RetryLater, classify_job
from tierroute.runtime import Runtime, get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.job_reads import read_job_view
from tierroute.store.jobs import create_job, retry_job
from tierroute.store.keys import create_api_key

pytestmark = pytest.mark.integration

PROMPT = "Explain what a write-ahead log is for, briefly."


@pytest.fixture
def llm_classifier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "llm")


@pytest.fixture
def rt(clean_db: Services, sim: RunningSimulator) -> Runtime:
    return get_runtime()


def guarded(rt: Runtime, policy: BudgetPolicy, global_usd: float | None = None) -> Runtime:
    return replace(rt, budgets=BudgetGuard(rt.tiers, global_usd, policy, key_budgets_ttl_s=0))


def new_key(budget: Decimal | None) -> uuid.UUID:
    with session_scope() as session:
        key, _ = create_api_key(session, f"team-{uuid.uuid4().hex[:6]}", daily_budget_usd=budget)
        return key.id


def submit(key_id: uuid.UUID | None, **fields: Any) -> uuid.UUID:
    spec = JobSpec(**{"prompt": PROMPT, **fields})
    with session_scope() as session:
        job, _ = create_job(session, spec, default_max_tokens=256, api_key_id=key_id)
        return job.id


def view(job_id: uuid.UUID) -> dict[str, Any]:
    return read_job_view(job_id)


def billed_to_jobs_of(key_id: uuid.UUID | None) -> Decimal:
    """What the calls of a key's jobs billed (None: every call)."""
    with session_scope() as session:
        return Decimal(
            session.execute(
                text(
                    "SELECT coalesce(sum(c.cost_usd), 0) FROM model_calls c"
                    " LEFT JOIN jobs j ON j.id = c.job_id"
                    " WHERE CAST(:key AS uuid) IS NULL OR j.api_key_id = :key"
                ),
                {"key": key_id},
            ).scalar_one()
        )


def run(rt: Runtime, job_id: uuid.UUID) -> None:
    """Classify, then complete, the way the workers do, waiting out RetryLater."""
    step: Any = classify_job
    while True:
        outcome = step(rt, job_id)
        if isinstance(outcome, RetryLater):
            time.sleep(min(outcome.delay_s, 0.2))
            continue
        if step is classify_job and isinstance(outcome, str):
            step = complete_job
            continue
        return


def test_thinking_output_counts_in_the_worst_case(rt: Runtime) -> None:
    # Haiku has no adaptive thinking, so an override sends manual thinking: max_tokens
    # plus budget_tokens of output. Room for max_tokens: 1, not for the thinking.
    key = new_key(Decimal("0.0001"))
    rt = guarded(rt, BudgetPolicy.REJECT)
    job = submit(key, force_tier="haiku", max_tokens=1, thinking={"thinking": "enabled"})
    run(rt, job)
    assert billed_to_jobs_of(key) <= Decimal("0.0001")
    rejected = view(job)
    assert rejected["status"] == JobStatus.FAILED
    assert str(rejected["error"]).startswith("budget_exceeded: key 'team-")


@pytest.mark.parametrize(
    ("tier", "thinking"),
    [
        ("haiku", {"thinking": "enabled", "budget_tokens": 2048}),
        ("sonnet", {"thinking": "adaptive", "effort": "max"}),
        ("opus", None),
        ("sonnet", {"thinking": "enabled", "budget_tokens": 4096}),
    ],
)
def test_every_billed_completion_is_within_its_worst_case(
    rt: Runtime, tier: str, thinking: dict[str, Any] | None
) -> None:
    # A long system prompt is written to the prompt cache at 1.25x the input price.
    system = "You answer as a careful database engineer. " * 400  # ~17,600 characters
    for max_tokens in (1, 40, 300):
        job = submit(None, force_tier=tier, max_tokens=max_tokens, system=system, thinking=thinking)
        run(rt, job)
        done = view(job)
        assert done["status"] == JobStatus.SUCCEEDED, done["error"]
        worst = worst_case_cost(rt.tiers.get(tier), PROMPT, system, max_tokens, thinking)
        assert Decimal(str(done["cost_usd"])) <= worst


def test_cache_write_premium_counts_in_the_worst_case(rt: Runtime) -> None:
    # Unique to this test: the simulator's cache outlives a test, and a read costs less.
    system = f"[{uuid.uuid4()}] " + "You answer as a careful database engineer. " * 400
    job = submit(None, force_tier="haiku", max_tokens=8, system=system)
    run(rt, job)
    with session_scope() as session:
        written = session.execute(
            text("SELECT cache_creation_input_tokens FROM model_calls WHERE job_id = :id"),
            {"id": job},
        ).scalar_one()
    assert written > 0  # the call did write the cache, at the premium
    billed = Decimal(str(view(job)["cost_usd"]))
    assert billed <= worst_case_cost(rt.tiers.get("haiku"), PROMPT, system, 8)


def test_the_classifier_call_is_reserved_before_it_is_made(
    llm_classifier: None, rt: Runtime, sim: RunningSimulator
) -> None:
    # Less than one classifier call: the job is rejected without calling anyone.
    key = new_key(Decimal("0.0001"))
    rt = guarded(rt, BudgetPolicy.DOWNGRADE)
    job = submit(key, max_tokens=1)
    run(rt, job)
    assert billed_to_jobs_of(key) <= Decimal("0.0001")
    assert sim.stats()["total"] == 0
    assert str(view(job)["error"]).startswith("budget_exceeded: ")


@pytest.mark.parametrize("policy", [BudgetPolicy.REJECT, BudgetPolicy.DOWNGRADE])
def test_a_redriven_job_is_checked_against_todays_budget(
    rt: Runtime, sim: RunningSimulator, policy: BudgetPolicy
) -> None:
    rt = guarded(rt, policy)
    opus_worst = worst_case_cost(rt.tiers.get("opus"), PROMPT, None, 256)
    key = new_key(opus_worst * Decimal("1.5"))
    job = submit(key, force_tier="opus")
    assert classify_job(rt, job) == "opus"
    sim.configure(fault_sequence=[400])  # a permanent failure: nothing billed
    assert complete_job(rt, job) is None
    assert view(job)["status"] == JobStatus.FAILED
    # Another job spends most of the budget meanwhile.
    other = submit(key, force_tier="opus")
    run(rt, other)
    assert view(other)["status"] == JobStatus.SUCCEEDED
    with session_scope() as session:
        retry_job(session, job)
    run(rt, job)
    assert billed_to_jobs_of(key) <= opus_worst * Decimal("1.5")
    again = view(job)
    routing = again["routing"]
    if policy is BudgetPolicy.REJECT:
        assert again["status"] == JobStatus.FAILED
        assert str(again["error"]).startswith("budget_exceeded: ")
        assert routing["budget_action"] == "rejected"
    else:
        assert again["status"] == JobStatus.SUCCEEDED
        assert again["tier"] != "opus" and routing["tier"] == again["tier"]
        assert routing["budget_action"] == "downgraded"


PROMPTS = [
    PROMPT,
    "Design a sharded job queue with exactly-once billing and explain the trade-offs.",
    "数据库的预写日志是什么？请详细说明它如何保证崩溃后的一致性。" * 6,
    "ログ先行書き込みの仕組みを説明してください。🙂🚀🔥" * 8,
    "def f(x):\n    return {k: v for k, v in x.items() if v}\n" * 10,
]
THINKING: list[dict[str, Any] | None] = [
    None,
    {"thinking": "enabled", "budget_tokens": 1024},
    {"thinking": "enabled", "budget_tokens": 4096},
    {"thinking": "adaptive", "effort": "high"},
    {"thinking": "none"},
]


@pytest.mark.parametrize("policy", [BudgetPolicy.REJECT, BudgetPolicy.DOWNGRADE])
def test_no_key_spends_past_its_budget_under_200_concurrent_jobs(
    llm_classifier: None, rt: Runtime, policy: BudgetPolicy
) -> None:
    budgets = [Decimal("0.001"), Decimal("0.01"), Decimal("0.04")]
    keys = [new_key(b) for b in budgets]
    global_usd = Decimal("0.06")
    rt = guarded(rt, policy, float(global_usd))
    rng = random.Random(14)
    system = "Answer as a senior engineer would, precisely. " * 400
    jobs = [
        submit(
            keys[n % len(keys)],
            prompt=rng.choice(PROMPTS),
            max_tokens=rng.choice([1, 16, 200, 600]),
            force_tier=rng.choice([None, None, "haiku", "sonnet", "opus"]),
            thinking=rng.choice(THINKING),
            system=system if n % 10 == 0 else None,
        )
        for n in range(200)
    ]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda job: run(rt, job), jobs))

    statuses = [view(job)["status"] for job in jobs]
    assert set(statuses) <= {JobStatus.SUCCEEDED, JobStatus.FAILED}
    for key, budget in zip(keys, budgets, strict=True):
        assert billed_to_jobs_of(key) <= budget
    assert billed_to_jobs_of(None) <= global_usd
    # The budgets were binding, and still let work through.
    assert JobStatus.FAILED in statuses and JobStatus.SUCCEEDED in statuses


def test_jobs_in_flight_before_a_budget_is_set_count_against_it(rt: Runtime) -> None:
    rt = guarded(rt, BudgetPolicy.REJECT)
    key = new_key(None)
    first = submit(key, force_tier="opus")
    assert classify_job(rt, first) == "opus"  # no budget anywhere: nothing reserved
    opus_worst = worst_case_cost(rt.tiers.get("opus"), PROMPT, None, 256)
    with session_scope() as session:
        session.execute(
            text("UPDATE api_keys SET daily_budget_usd = :usd WHERE id = :id"),
            {"usd": opus_worst * Decimal("1.5"), "id": key},
        )
    second = submit(key, force_tier="opus")
    assert classify_job(rt, second) is None  # the first job's worst case is held
    run(rt, first)
    assert view(first)["status"] == JobStatus.SUCCEEDED
    assert billed_to_jobs_of(key) <= opus_worst * Decimal("1.5")
