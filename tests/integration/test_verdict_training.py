"""`tierroute train` learns from shadow judging's verdicts, under the promotion guard."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from tests.conftest import Services, clear_settings_caches
from tierroute.classify import artifacts
from tierroute.classify.model import LocalModel
from tierroute.cli.main import main
from tierroute.devstack.simulator.topics import UNSEEN_ASIDES, topic_prompts
from tierroute.domain.specs import JobSpec
from tierroute.runtime import get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.jobs import create_job
from tierroute.training.quality import apgr, routing_curve

pytestmark = pytest.mark.integration


def rule_apgr(model: LocalModel, prompts: list[tuple[str, bool]]) -> float:
    """APGR against the hidden rule: the cheaper tier fails exactly the hard prompts."""
    scores = model.scores([p for p, _ in prompts])
    weak = [0.0 if hard else 1.0 for _, hard in prompts]
    return apgr(routing_curve(scores, weak, [1.0] * len(prompts)))


def judged_jobs(services: Services, prompts: list[tuple[str, bool]]) -> None:
    """Finished haiku jobs, each with the verdict the hidden rule gives it."""
    ids = []
    with session_scope() as session:
        for prompt, _ in prompts:
            job, _ = create_job(session, JobSpec(prompt=prompt), default_max_tokens=16)
            ids.append(job.id)
    with psycopg.connect(services.database_url.replace("+psycopg", "")) as conn:
        conn.execute("UPDATE jobs SET status = 'succeeded', tier = 'haiku'")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO shadow_verdicts (job_id, cheaper_tier, dearer_tier, judge_model,"
                " as_good, judged_at) VALUES (%s, 'haiku', 'sonnet', 'claude-opus-4-6', %s, now())",
                [(i, not hard) for i, (_, hard) in zip(ids, prompts, strict=True)],
            )


def test_train_learns_a_hidden_rule_from_verdicts_and_promotes(
    clean_db: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIERROUTE_ROUTER_DIR", str(tmp_path / "router"))
    clear_settings_caches()
    get_runtime()  # opens this process's database engine
    fresh = topic_prompts(500, seed=7, asides=UNSEEN_ASIDES)
    assert rule_apgr(artifacts.load_packaged(), fresh) < 0.6  # the packaged router cannot tell
    judged_jobs(clean_db, topic_prompts(400, seed=1))
    out = CliRunner().invoke(main, ["train", "--no-mmlu", "--json"])
    assert out.exit_code == 0, out.output
    outcome = json.loads(out.output.strip().splitlines()[-1])
    assert outcome["promoted"] is True, outcome["reason"]
    # A quarter is held out, and the guard compares both versions on it.
    assert 250 < LocalModel.load(Path(outcome["path"])).meta["trained_on"]["verdicts"] < 350
    assert (
        outcome["heldout"]["verdicts_agreement"] > outcome["current_heldout"]["verdicts_agreement"]
    )
    current, _ = artifacts.load_current(tmp_path / "router")
    assert current.version == outcome["version"]
    assert rule_apgr(current, fresh) >= 0.8
