"""`train` learns from the ratings table, `calibrate` from routing_decisions, on real Postgres."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.conftest import Services, clear_settings_caches
from tests.steps import complete_job
from tierroute.classify import artifacts
from tierroute.classify.model import LocalModel
from tierroute.cli.main import main
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.specs import JobSpec
from tierroute.pipeline.steps import classify_job
from tierroute.runtime import Runtime, get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.jobs import create_job, rate_job
from tierroute.store.models import RoutingDecision
from tierroute.training import calibration

pytestmark = pytest.mark.integration

# Nonsense words the rubric never saw: only the ratings can teach where this goes.
ODD_PROMPT = "Zorblax quux?"
PROMPTS = [
    'Format this JSON: {"name":"John","age":30}',
    "What is the capital of Peru?",
    "Translate 'good night' into German.",
    "Write a Python function to merge two sorted lists into one sorted list",
    "Explain how DNS resolution works, with a short example.",
    "Draft a polite email to my manager about a day off.",
    "Prove that the square root of 2 is irrational.",
    "Design a system for a global leaderboard with ten million players, covering "
    "consistency, sharding and failure handling.",
]


@pytest.fixture
def rt(
    clean_db: Services, sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Runtime:
    monkeypatch.setenv("TIERROUTE_ROUTER_DIR", str(tmp_path / "router"))
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "local")
    clear_settings_caches()
    return get_runtime()


def run_job(rt: Runtime, prompt: str) -> tuple[uuid.UUID, str]:
    with session_scope() as session:
        job, _ = create_job(session, JobSpec(prompt=prompt), default_max_tokens=64)
        job_id = job.id
    tier = classify_job(rt, job_id)
    assert tier is not None and complete_job(rt, job_id) is None
    return job_id, str(tier)


def test_decisions_record_the_local_classifier_and_its_version(rt: Runtime) -> None:
    job_id, tier = run_job(rt, PROMPTS[0])
    assert tier == "haiku"
    with session_scope() as session:
        decision = session.scalars(
            select(RoutingDecision).where(RoutingDecision.job_id == job_id)
        ).one()
        assert decision.classifier == "local"
        assert decision.classifier_version == artifacts.load_packaged().version
        assert decision.score is not None and 0 <= decision.score <= 1


def test_train_learns_from_the_ratings_table(rt: Runtime, tmp_path: Path) -> None:
    packaged = artifacts.load_packaged()
    before = packaged.score(ODD_PROMPT)
    odd_tier = None
    for _ in range(8):  # a quarter of rated jobs is held out, by job id
        job_id, odd_tier = run_job(rt, ODD_PROMPT)
        with session_scope() as session:
            rate_job(session, job_id, 0.0, "wrong answer, needed a stronger model")
    assert odd_tier == "haiku"  # short and unknown: the packaged model says haiku
    for prompt in PROMPTS:
        job_id, _ = run_job(rt, prompt)
        with session_scope() as session:
            rate_job(session, job_id, 0.9)
    out = CliRunner().invoke(main, ["train", "--no-mmlu", "--json"])
    assert out.exit_code in (0, 2), out.output
    outcome = json.loads(out.output.strip().splitlines()[-1])
    trained = LocalModel.load(Path(outcome["path"]))
    assert trained.meta["trained_on"]["ratings"] >= 3
    # Low ratings on haiku: the prompt needed a stronger tier, and the new version knows.
    assert trained.score(ODD_PROMPT) > before + 0.1
    assert outcome["current_version"] == artifacts.load_packaged().version
    assert "rubric_accuracy" in outcome["heldout"] and outcome["reason"]


def test_calibrate_hits_target_shares_from_recorded_scores(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = (
        PROMPTS
        + [f"{p} Please keep it short." for p in PROMPTS]
        + [f"{p} Thanks!" for p in PROMPTS[:4]]
    )
    for prompt in prompts:  # 20 decisions by the packaged model
        run_job(rt, prompt)
    monkeypatch.setattr(calibration, "MIN_RECORDED", 10)
    out = CliRunner().invoke(
        main, ["calibrate", "--haiku-share", "0.5", "--opus-share", "0.2", "--json"]
    )
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["source"] == "recorded scores" and result["prompts"] == 20
    assert result["shares"] == {"1": 0.5, "2": 0.3, "3": 0.2}
    assert Path(result["path"]).exists()
    # The next classifier built reads them.
    clear_settings_caches()
    assert get_runtime().classifier.thresholds.source == "calibrated"  # type: ignore[attr-defined]
    # Too few recorded scores: the recent prompts are scored again.
    again = CliRunner().invoke(
        main, ["calibrate", "--haiku-share", "0.4", "--opus-share", "0.4", "--json", "--rescore"]
    )
    assert json.loads(again.output)["source"] == "recent prompts re-scored"


def test_the_report_counts_decisions_per_classifier(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tierroute.config import default_tier_table
    from tierroute.store.report import build_report, format_report

    for prompt in PROMPTS[:3]:
        run_job(rt, prompt)
    # Hybrid with a local model never sure enough: every decision asks the llm.
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "hybrid")
    monkeypatch.setenv("TIERROUTE_HYBRID_CONFIDENCE", "1.0")
    clear_settings_caches()
    hybrid = get_runtime()
    for prompt in PROMPTS[3:5]:
        run_job(hybrid, prompt)
    with session_scope() as session:
        report = build_report(session, default_tier_table())
    assert report["decided_by"] == {"local": 3, "hybrid: asked llm": 2}
    assert "Decided by:          local 3, hybrid: asked llm 2" in format_report(report)
