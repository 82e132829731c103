"""Shadow judging end to end: the real stack learns a hidden rule from its own traffic.

The simulator's judge follows a hidden rule keyed on made-up topic words the router
never saw (tierroute/devstack/simulator/topics.py): a fifth of the prompts need the dearer
tier. Shadow-judged traffic runs through the API, the workers and the simulator;
`tierroute train` learns from the verdicts and promotes; a new stack then routes
fresh traffic with the promoted version, and its APGR against the rule is measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from tests.conftest import Services, truncate_all
from tests.e2e.conftest import api_client, started_stack, wait_for_batch
from tierroute.devstack.simulator.topics import HARD_TOPICS, UNSEEN_ASIDES, topic_prompts
from tierroute.devstack.stack import RunningStack
from tierroute.training.quality import apgr, routing_curve

pytestmark = pytest.mark.e2e

JUDGED_TRAFFIC = 1_500  # every job is chosen; the cap leaves some unjudged
FRESH_TRAFFIC = 500
MAX_TOKENS = 16
# Tiny answers make completions cheap and the judge, which reads both, dear by
# comparison: at these sizes one judgement costs several completions.
MAX_SHARE = 4.0


def stack_env(router_dir: Path, shadow_rate: float) -> dict[str, str]:
    return {
        "TIERROUTE_CLASSIFIER": "local",
        "TIERROUTE_ROUTER_DIR": str(router_dir),
        "TIERROUTE_SHADOW_RATE": str(shadow_rate),
        "TIERROUTE_SHADOW_MAX_SHARE": str(MAX_SHARE),
    }


def query(database_url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def submit(api: httpx.Client, prompts: list[tuple[str, bool]]) -> str:
    """One batch of the prompts; waits until every job has finished."""
    body = [{"prompt": p, "max_tokens": MAX_TOKENS} for p, _ in prompts]
    response = api.post("/v1/batches", json=body)
    assert response.status_code == 202, response.text
    batch_id = str(response.json()["id"])
    view = wait_for_batch(api, batch_id, timeout_s=600)
    assert view["counts"].get("succeeded") == len(prompts), view
    return batch_id


def wait_for_judging(stack: RunningStack, quiet_s: float = 3.0, timeout_s: float = 600) -> None:
    """Until no shadow task is queued or in flight, and the verdicts stop changing."""
    broker = redis.Redis.from_url(stack.broker_url)
    deadline = time.monotonic() + timeout_s
    last: tuple[Any, ...] = ()
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        queued = sum(int(broker.llen(q)) for q in ("haiku", "sonnet", "opus"))  # type: ignore[arg-type]
        [state] = query(
            stack.database_url,
            "SELECT count(*), count(*) FILTER (WHERE as_good IS NULL),"
            " (SELECT count(*) FROM model_calls) FROM shadow_verdicts",
        )
        now = time.monotonic()
        if state != last or queued or state[1]:
            last, still_since = state, now
        elif now - still_since >= quiet_s:
            return
        time.sleep(0.5)
    raise AssertionError(f"shadow judging did not settle: {last}")


def rule_apgr(scores: list[float], hard: list[bool]) -> float:
    """APGR against the hidden rule: the cheaper tier fails exactly the hard prompts."""
    weak = [0.0 if h else 1.0 for h in hard]
    return apgr(routing_curve(scores, weak, [1.0] * len(hard)))


def batch_scores(stack: RunningStack, batch_id: str) -> dict[str, float]:
    rows = query(
        stack.database_url,
        "SELECT j.prompt, d.score FROM jobs j JOIN routing_decisions d ON d.job_id = j.id"
        " WHERE j.batch_id = %s",
        batch_id,
    )
    return {str(prompt): float(score) for prompt, score in rows}


def tierroute(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tierroute", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


@pytest.fixture(scope="module")
def router_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("router")


def test_shadow_judging_teaches_the_router_a_hidden_rule_within_its_cost_cap(
    services: Services, router_dir: Path
) -> None:
    truncate_all(services.database_url)
    started = time.monotonic()
    traffic = topic_prompts(JUDGED_TRAFFIC, seed=1)
    sim_env = {"TIERROUTE_SIM_JUDGE_RULE_WORDS": json.dumps(list(HARD_TOPICS))}
    with (
        started_stack(
            services,
            "tierroute-e2e-shadow-",
            classify_concurrency=8,
            tier_concurrency=16,
            simulator_env=sim_env,
            env=stack_env(router_dir, shadow_rate=1.0),
        ) as stack,
        api_client(stack, timeout_s=60) as api,
    ):
        batch_id = submit(api, traffic)
        wait_for_judging(stack)
        [(judged, as_good, pending)] = query(
            stack.database_url,
            "SELECT count(*), count(*) FILTER (WHERE as_good),"
            " count(*) FILTER (WHERE as_good IS NULL) FROM shadow_verdicts",
        )
        assert pending == 0
        # The cap binds: some jobs are judged, not all, and never more than 2,000.
        assert 300 <= judged < JUDGED_TRAFFIC
        hard_share = sum(h for _, h in traffic) / len(traffic)
        assert abs((judged - as_good) / judged - hard_share) < 0.1  # the judge follows the rule
        [(completion, learning, shadows, judges)] = query(
            stack.database_url,
            "SELECT sum(cost_usd) FILTER (WHERE purpose = 'complete'),"
            " sum(cost_usd) FILTER (WHERE purpose IN ('shadow', 'judge')),"
            " count(*) FILTER (WHERE purpose = 'shadow'),"
            " count(*) FILTER (WHERE purpose = 'judge') FROM model_calls",
        )
        assert shadows == judges == judged
        assert learning <= completion * type(completion)(str(MAX_SHARE))
        # Before: the packaged router, which routed this traffic, cannot tell the rule.
        scores = batch_scores(stack, batch_id)
        before = rule_apgr([scores[p] for p, _ in traffic], [h for _, h in traffic])
        assert before < 0.65
        # The learning cost, apart, in /v1/report, `tierroute report` and the dashboard.
        report = api.get("/v1/report").json()
        assert report["learning_cost_usd"] == pytest.approx(float(learning))
        assert report["judged_jobs"] == judged
        assert report["learning_share_today_pct"] <= 100 * MAX_SHARE
        key_env = {"TIERROUTE_API_KEY": stack.api_key}
        text_report = tierroute("report", "--api", stack.api_url, env=key_env)
        assert text_report.returncode == 0, text_report.stderr
        assert "Learning cost:" in text_report.stdout
        page = api.get("/dashboard")
        assert page.status_code == 200 and 'data-tile="learning"' in page.text
    judging_s = time.monotonic() - started

    trained = tierroute(
        "train",
        "--no-mmlu",
        "--json",
        env={
            "TIERROUTE_DATABASE_URL": services.database_url,
            "TIERROUTE_ROUTER_DIR": str(router_dir),
        },
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    outcome = json.loads(trained.stdout.strip().splitlines()[-1])
    assert outcome["promoted"] is True, outcome["reason"]
    assert "verdicts_agreement" in outcome["heldout"]

    # Fresh traffic, routed by a stack that loads the promoted version.
    fresh = topic_prompts(FRESH_TRAFFIC, seed=2, asides=UNSEEN_ASIDES)
    with (
        started_stack(
            services,
            "tierroute-e2e-shadow-fresh-",
            classify_concurrency=8,
            tier_concurrency=16,
            env=stack_env(router_dir, shadow_rate=0.0),
        ) as stack,
        api_client(stack, timeout_s=60) as api,
    ):
        fresh_scores = batch_scores(stack, submit(api, fresh))
        versions = query(
            stack.database_url,
            "SELECT DISTINCT d.classifier_version FROM routing_decisions d"
            " JOIN jobs j ON j.id = d.job_id WHERE j.prompt = ANY(%s)",
            [p for p, _ in fresh],
        )
    after = rule_apgr([fresh_scores[p] for p, _ in fresh], [h for _, h in fresh])
    assert versions == [(outcome["version"],)]
    print(
        f"shadow judging e2e: {judged} judged of {JUDGED_TRAFFIC} jobs, learning cost "
        f"{float(learning):.4f} USD = {float(learning / completion):.2f} x completions; "
        f"APGR {before:.3f} -> {after:.3f}; judging phase {judging_s:.0f} s, "
        f"total {time.monotonic() - started:.0f} s"
    )
    assert after >= 0.8
