"""Daily budgets on real Postgres: reject or downgrade, recorded, per key and global."""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal

import pytest
from click.testing import CliRunner

from tests.conftest import Services
from tests.steps import complete_job
from tierroute.cli.main import main
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.budget import BudgetPolicy
from tierroute.domain.specs import JobSpec
from tierroute.domain.status import JobStatus
from tierroute.pipeline.budgets import BudgetGuard, worst_case_cost
from tierroute.pipeline.steps import classify_job
from tierroute.runtime import Runtime, get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.job_reads import read_job_view
from tierroute.store.jobs import create_job, retry_job
from tierroute.store.keys import create_api_key, set_daily_budget

pytestmark = pytest.mark.integration

PROMPT = "Summarise the trade-offs of write-ahead logging. " * 8  # ~400 characters
MAX_TOKENS = 256


@pytest.fixture
def rt(clean_db: Services, sim: RunningSimulator) -> Runtime:
    return get_runtime()


def opus_worst_case(rt: Runtime) -> Decimal:
    return worst_case_cost(rt.tiers.get("opus"), PROMPT, None, MAX_TOKENS)


def new_key(budget: Decimal | None) -> uuid.UUID:
    with session_scope() as session:
        key, _ = create_api_key(session, f"team-{uuid.uuid4().hex[:6]}", daily_budget_usd=budget)
        return key.id


def submit(key_id: uuid.UUID | None, tier: str = "opus") -> uuid.UUID:
    spec = JobSpec(prompt=PROMPT, force_tier=tier, max_tokens=MAX_TOKENS)
    with session_scope() as session:
        job, _ = create_job(session, spec, default_max_tokens=MAX_TOKENS, api_key_id=key_id)
        return job.id


def view(job_id: uuid.UUID) -> dict[str, object]:
    return read_job_view(job_id)


def with_policy(rt: Runtime, policy: BudgetPolicy, global_usd: float | None = None) -> Runtime:
    return replace(rt, budgets=BudgetGuard(rt.tiers, global_usd, policy, key_budgets_ttl_s=0))


def test_key_budget_rejects_the_job_that_would_exceed_it(rt: Runtime) -> None:
    # Room for one Opus job's worst case, not two: the first one routed reserves its share.
    key = new_key(opus_worst_case(rt) * Decimal("1.5"))
    rt = with_policy(rt, BudgetPolicy.REJECT)
    first, second = submit(key), submit(key)
    assert classify_job(rt, first) == "opus"
    assert classify_job(rt, second) is None
    rejected = view(second)
    assert rejected["status"] == JobStatus.FAILED
    assert str(rejected["error"]).startswith("budget_exceeded: key 'team-")
    routing = rejected["routing"]
    assert isinstance(routing, dict)
    assert routing["budget_action"] == "rejected"
    assert "daily budget" in routing["budget_reason"]
    # The first job is unaffected and runs.
    assert complete_job(rt, first) is None
    assert view(first)["status"] == JobStatus.SUCCEEDED


def test_downgrade_policy_moves_the_job_to_the_dearest_tier_that_fits(rt: Runtime) -> None:
    opus = opus_worst_case(rt)
    sonnet = worst_case_cost(rt.tiers.get("sonnet"), PROMPT, None, MAX_TOKENS)
    haiku = worst_case_cost(rt.tiers.get("haiku"), PROMPT, None, MAX_TOKENS)
    assert opus + haiku < opus + sonnet
    key = new_key(opus + (haiku + sonnet) / 2)  # after one Opus job only Haiku fits
    rt = with_policy(rt, BudgetPolicy.DOWNGRADE)
    first, second = submit(key), submit(key)
    assert classify_job(rt, first) == "opus"
    assert classify_job(rt, second) == "haiku"
    assert complete_job(rt, second) is None
    downgraded = view(second)
    assert downgraded["status"] == JobStatus.SUCCEEDED
    assert downgraded["tier"] == "haiku"
    routing = downgraded["routing"]
    assert isinstance(routing, dict)
    assert routing["budget_action"] == "downgraded"
    assert "downgraded from opus to haiku" in routing["budget_reason"]


def test_billed_spend_counts_and_other_keys_do_not(rt: Runtime) -> None:
    rt = with_policy(rt, BudgetPolicy.REJECT)
    haiku = worst_case_cost(rt.tiers.get("haiku"), PROMPT, None, MAX_TOKENS)
    other = new_key(None)
    for _ in range(3):  # another key's spending is not ours
        job = submit(other)
        classify_job(rt, job)
        complete_job(rt, job)
    key = new_key(None)
    first = submit(key)
    classify_job(rt, first)
    complete_job(rt, first)
    billed = Decimal(str(view(first)["cost_usd"]))
    assert billed > haiku
    name = get_key_name(key)
    # Only if the billed job counts is there no room for a Haiku job's worst case.
    with session_scope() as session:
        set_daily_budget(session, name, billed / 2 + haiku)
    assert classify_job(rt, submit(key, tier="haiku")) is None
    # Only if the other key's three jobs do not count is there room for one.
    with session_scope() as session:
        set_daily_budget(session, name, billed + haiku * Decimal("1.5"))
    assert classify_job(rt, submit(key, tier="haiku")) == "haiku"


def test_global_budget_applies_to_every_key(rt: Runtime) -> None:
    one = float(opus_worst_case(rt))
    rt = with_policy(rt, BudgetPolicy.REJECT, global_usd=one * 1.5)
    a, b = submit(new_key(None)), submit(None)
    assert classify_job(rt, a) == "opus"
    assert classify_job(rt, b) is None
    assert "global daily budget" in str(view(b)["error"])


def test_retrying_a_rejected_job_checks_the_budget_again(rt: Runtime) -> None:
    key = new_key(opus_worst_case(rt) * Decimal("0.5"))
    rt = with_policy(rt, BudgetPolicy.REJECT)
    job = submit(key)
    assert classify_job(rt, job) is None
    assert view(job)["status"] == JobStatus.FAILED
    with session_scope() as session:
        set_daily_budget(session, get_key_name(key), Decimal("10"))
        retry_job(session, job)
    assert classify_job(rt, job) == "opus"
    assert complete_job(rt, job) is None
    again = view(job)
    assert again["status"] == JobStatus.SUCCEEDED
    routing = again["routing"]
    assert isinstance(routing, dict)
    assert routing["budget_action"] is None


def get_key_name(key_id: uuid.UUID) -> str:
    from tierroute.store.models import ApiKey

    with session_scope() as session:
        key = session.get(ApiKey, key_id)
        assert key is not None
        return key.name


def test_keys_budget_command_sets_and_clears(clean_db: Services) -> None:
    runner = CliRunner()
    created = runner.invoke(main, ["keys", "create", "analytics", "--daily-budget", "2.5"])
    assert created.exit_code == 0, created.output
    assert "trk_" in created.output
    cleared = runner.invoke(main, ["keys", "budget", "analytics", "--clear"])
    assert cleared.exit_code == 0, cleared.output
    assert "no budget of its own" in cleared.output
    missing = runner.invoke(main, ["keys", "budget", "nobody", "3"])
    assert missing.exit_code != 0
    assert "no active key named 'nobody'" in missing.output
    neither = runner.invoke(main, ["keys", "budget", "analytics"])
    assert neither.exit_code == 2
