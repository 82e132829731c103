"""Shadow judging on real Postgres and the simulator: verdicts, their calls, the cost cap."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from tests.conftest import Services, clear_rate_limits, clear_settings_caches
from tests.steps import complete_job
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.specs import JobSpec
from tierroute.pipeline.shadow import chosen, shadow_job
from tierroute.pipeline.steps import RetryLater, classify_job
from tierroute.runtime import Runtime, get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.jobs import create_job

pytestmark = pytest.mark.integration

SIMPLE = "What is the capital of Peru?"
HARD_WORD = "zorblat"


@pytest.fixture
def rt(
    clean_db: Services, sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Runtime:
    monkeypatch.setenv("TIERROUTE_ROUTER_DIR", str(tmp_path / "router"))
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "local")
    monkeypatch.setenv("TIERROUTE_SHADOW_RATE", "1")
    monkeypatch.setenv("TIERROUTE_SHADOW_MAX_SHARE", "100")
    clear_settings_caches()
    return get_runtime()


def run_job(rt: Runtime, prompt: str, max_tokens: int = 32) -> uuid.UUID:
    with session_scope() as session:
        job, _ = create_job(session, JobSpec(prompt=prompt), default_max_tokens=max_tokens)
        job_id = job.id
    assert classify_job(rt, job_id) is not None
    assert complete_job(rt, job_id) is None
    return job_id


def query(services: Services, sql: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(services.database_url.replace("+psycopg", "")) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def test_a_judged_job_gets_a_verdict_and_its_two_calls_are_billed_as_learning(
    rt: Runtime, clean_db: Services
) -> None:
    job_id = run_job(rt, SIMPLE)
    assert shadow_job(rt, job_id) is True  # the rubric: a simple prompt, haiku is as good
    [verdict] = query(
        clean_db,
        "SELECT cheaper_tier, dearer_tier, judge_model, as_good, reserved_usd, judged_at"
        " FROM shadow_verdicts WHERE job_id = %s",
        job_id,
    )
    assert verdict[:5] == ("haiku", "sonnet", rt.tiers.top.model, True, None)
    assert verdict[5] is not None
    calls = query(
        clean_db,
        "SELECT purpose, tier, model, cost_usd, cost_if_opus_usd FROM model_calls"
        " WHERE job_id = %s ORDER BY id",
        job_id,
    )
    assert [(c[0], c[1]) for c in calls] == [
        ("complete", "haiku"),
        ("shadow", "sonnet"),
        ("judge", rt.tiers.top.name),
    ]
    assert all(Decimal(str(c[3])) > 0 for c in calls)
    assert all(c[4] == 0 for c in calls[1:])  # learning saves nothing against Opus
    # A redelivered task judges nothing twice.
    assert shadow_job(rt, job_id) is None
    assert query(clean_db, "SELECT count(*) FROM model_calls WHERE job_id = %s", job_id)[0][0] == 3


def test_the_judge_follows_the_simulators_hidden_rule(
    rt: Runtime, sim: RunningSimulator, clean_db: Services
) -> None:
    sim.configure(judge_rule_words=[HARD_WORD])
    easy = run_job(rt, "Tell me about the quintar of the old harbour.")
    hard = run_job(rt, f"Tell me about the {HARD_WORD} of the old harbour.")
    assert shadow_job(rt, easy) is True
    assert shadow_job(rt, hard) is False
    rows = query(clean_db, "SELECT job_id, as_good FROM shadow_verdicts ORDER BY as_good")
    assert rows == [(hard, False), (easy, True)]


def test_learning_cost_stays_within_its_share_of_completion_spend(
    clean_db: Services, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TIERROUTE_ROUTER_DIR", str(tmp_path / "router"))
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "local")
    monkeypatch.setenv("TIERROUTE_SHADOW_RATE", "1")
    monkeypatch.setenv("TIERROUTE_SHADOW_MAX_SHARE", "1.5")
    clear_settings_caches()
    rt = get_runtime()
    jobs = [run_job(rt, f"{SIMPLE} Answer number {i}.") for i in range(40)]
    verdicts = [shadow_job(rt, job_id) for job_id in jobs]
    judged = [v for v in verdicts if v is not None]
    # The cap binds: some jobs are judged, the others left out.
    assert 0 < len(judged) < len(verdicts)
    [(completion, learning)] = query(
        clean_db,
        "SELECT sum(cost_usd) FILTER (WHERE purpose = 'complete'),"
        " sum(cost_usd) FILTER (WHERE purpose IN ('shadow', 'judge')) FROM model_calls",
    )
    assert Decimal(str(learning)) <= Decimal("1.5") * Decimal(str(completion))
    assert query(clean_db, "SELECT count(*) FROM shadow_verdicts")[0][0] == len(judged)


def test_shadow_judging_is_off_by_default(
    clean_db: Services, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TIERROUTE_ROUTER_DIR", str(tmp_path / "router"))
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "local")
    clear_settings_caches()
    rt = get_runtime()
    assert rt.settings.shadow_rate == 0
    job_id = run_job(rt, SIMPLE)
    assert not chosen(job_id, rt.settings.shadow_rate)
    assert shadow_job(rt, job_id) is None
    assert query(clean_db, "SELECT count(*) FROM shadow_verdicts")[0][0] == 0


def test_a_budget_without_room_for_the_learning_leaves_the_job_unjudged(
    clean_db: Services, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TIERROUTE_ROUTER_DIR", str(tmp_path / "router"))
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "local")
    monkeypatch.setenv("TIERROUTE_SHADOW_RATE", "1")
    monkeypatch.setenv("TIERROUTE_SHADOW_MAX_SHARE", "100")
    # Room for a short haiku job (about $0.0002 at worst), not for its judge on Opus.
    monkeypatch.setenv("TIERROUTE_DAILY_BUDGET_USD", "0.001")
    clear_settings_caches()
    rt = get_runtime()
    job_id = run_job(rt, SIMPLE)
    assert shadow_job(rt, job_id) is None
    assert query(clean_db, "SELECT count(*) FROM shadow_verdicts")[0][0] == 0
    assert query(clean_db, "SELECT count(*) FROM model_calls")[0][0] == 1
    assert query(clean_db, "SELECT count(*) FROM budget_holds")[0][0] == 0


def test_the_report_and_the_dashboard_show_the_learning_cost_apart(
    rt: Runtime, clean_db: Services
) -> None:
    from tierroute.dashboard import render_dashboard
    from tierroute.dashboard.data import LEARNING, load_dashboard, spend_by_day
    from tierroute.store.report import build_report, format_report

    run_job(rt, "Translate 'good night' into German.")  # answered, not judged
    judged = run_job(rt, SIMPLE)
    assert shadow_job(rt, judged) is True
    [(learning, completion)] = query(
        clean_db,
        "SELECT sum(cost_usd) FILTER (WHERE purpose IN ('shadow', 'judge')),"
        " sum(cost_usd) FILTER (WHERE purpose = 'complete') FROM model_calls",
    )
    with session_scope() as session:
        report = build_report(session, rt.tiers)
        dashboard = load_dashboard(session, rt.tiers)
    assert report["learning_cost_usd"] == pytest.approx(float(learning))
    assert report["completion_cost_usd"] == pytest.approx(float(completion))
    assert (report["shadow_calls"], report["judge_calls"], report["judged_jobs"]) == (1, 1, 1)
    assert report["judged_cheaper_as_good"] == 1
    assert report["learning_share_today_pct"] == pytest.approx(
        100 * float(learning) / float(completion), abs=0.01
    )
    assert "Learning cost:       $" in format_report(report)
    # The learning calls are a series of their own, not the tiers' completions.
    series = spend_by_day(dashboard, rt.tiers)
    assert sum(series[LEARNING]) == pytest.approx(float(learning))
    assert sum(series["haiku"]) == pytest.approx(float(completion))
    assert 'data-tile="learning"' in render_dashboard(dashboard, rt.tiers)


def test_a_rate_limited_shadow_call_is_tried_later_with_nothing_billed(
    clean_db: Services, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TIERROUTE_ROUTER_DIR", str(tmp_path / "router"))
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "local")
    monkeypatch.setenv("TIERROUTE_SHADOW_RATE", "1")
    monkeypatch.setenv("TIERROUTE_SHADOW_MAX_SHARE", "100")
    # One Sonnet request a minute: the second haiku job's shadow call must wait.
    monkeypatch.setenv("TIERROUTE_RATE_LIMIT_OVERRIDES", '{"sonnet": {"rpm": 1}}')
    clear_settings_caches()
    rt = get_runtime()
    first, second = run_job(rt, SIMPLE), run_job(rt, f"{SIMPLE} Briefly.")
    assert shadow_job(rt, first) is True
    retry = shadow_job(rt, second)
    assert isinstance(retry, RetryLater) and 0 < retry.delay_s <= rt.settings.retry_backoff_max_s
    assert query(clean_db, "SELECT count(*) FROM model_calls WHERE job_id = %s", second)[0][0] == 1
    assert query(clean_db, "SELECT count(*) FROM shadow_verdicts WHERE job_id = %s", second) == [
        (0,)
    ]
    clear_rate_limits(rt.settings.broker_url or "")  # the minute has passed
    assert shadow_job(rt, second) is True
