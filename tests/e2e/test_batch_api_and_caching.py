"""Batch mode and prompt caching on the real stack: API, Celery workers with beat, simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import REPO_ROOT, Services, truncate_all
from tests.e2e.conftest import api_client, started_stack, wait_for_batch
from tierroute.devstack.stack import RunningStack
from tierroute.domain.cost import BATCH_RATE, TokenCounts, cost_usd
from tierroute.domain.tiers import load_tier_table

pytestmark = pytest.mark.e2e

TIERS = load_tier_table()
# About 5,000 tokens at four characters a token: above every tier's minimum cacheable length.
SHARED_SYSTEM = "You answer for the ACME help desk; be brief, exact and polite. " * 320


@pytest.fixture(scope="module")
def stack(services: Services) -> Iterator[RunningStack]:
    """A stack that polls Message Batches every second; simulated batches take 2 s."""
    truncate_all(services.database_url)
    with started_stack(
        services,
        "tierroute-e2e-batch-",
        classify_concurrency=16,
        tier_concurrency=16,
        simulator_env={"TIERROUTE_SIM_BATCH_PROCESSING_S": "2"},
        env={
            "TIERROUTE_CLASSIFIER": "llm",
            "TIERROUTE_BATCH_API_POLL_S": "1",
            "TIERROUTE_CACHE_PRIME_WAIT_S": "0.3",
        },
    ) as running:
        yield running


@pytest.fixture
def api(stack: RunningStack) -> Iterator[httpx.Client]:
    with api_client(stack, timeout_s=60) as client:
        yield client


def tierroute(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tierroute", *args, "--api", stack.api_url],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "TIERROUTE_API_KEY": stack.api_key},
    )


def sample_prompts() -> list[dict[str, Any]]:
    path = REPO_ROOT / "tierroute" / "data" / "sample_prompts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def query(stack: RunningStack, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(stack.database_url.replace("+psycopg", "")) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def test_a_1000_prompt_batch_in_batch_api_mode_costs_half_the_live_price(
    stack: RunningStack, api: httpx.Client, tmp_path: Path
) -> None:
    samples = sample_prompts()
    prompts = tmp_path / "prompts.jsonl"
    lines = []
    for n in range(1000):
        sample = samples[n % len(samples)]
        lines.append(json.dumps({"prompt": f"{sample['prompt']} (#{n})", "max_tokens": 300}))
    prompts.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    submitted = tierroute(stack, "submit", str(prompts), "--batch-api", "--wait")
    elapsed = time.monotonic() - started
    assert submitted.returncode == 0, submitted.stderr
    batch_id = submitted.stdout.strip().splitlines()[-1]
    print(f"\n1000-prompt batch_api batch done in {elapsed:.1f}s")

    view = api.get(f"/v1/batches/{batch_id}").json()
    assert view["mode"] == "batch_api" and view["counts"]["succeeded"] == 1000
    providers = view["provider_batches"]
    assert sorted(p["tier"] for p in providers) == ["haiku", "opus", "sonnet"]
    assert all(p["processing_status"] == "ended" for p in providers)
    assert sum(p["request_counts"]["succeeded"] for p in providers) == 1000
    status = tierroute(stack, "status", batch_id)
    assert status.returncode == 0 and "message batch" in status.stdout and "ended" in status.stdout

    calls = query(
        stack,
        "SELECT c.tier, c.input_tokens, c.output_tokens, c.cost_usd, c.cost_if_opus_usd,"
        "       c.batch_api, c.purpose"
        "  FROM model_calls c JOIN jobs j ON j.id = c.job_id WHERE j.batch_id = %s",
        batch_id,
    )
    completes = [c for c in calls if c[6] == "complete"]
    assert len(completes) == 1000 and all(c[5] for c in completes)
    assert all(not c[5] for c in calls if c[6] == "classify")  # the classifier runs live
    live_total = batch_total = Decimal(0)
    for tier, input_tokens, output_tokens, cost, if_opus, _, _ in completes:
        tokens = TokenCounts(input_tokens, output_tokens)
        live = cost_usd(tokens, TIERS.get(tier))
        assert cost == BATCH_RATE * live
        assert if_opus == BATCH_RATE * cost_usd(tokens, TIERS.top)
        live_total += live
        batch_total += cost
    print(f"batch cost ${batch_total:.6f} vs live price ${live_total:.6f}")
    assert batch_total / live_total == Decimal("0.5")

    report = api.get("/v1/report").json()
    assert report["batch_api_calls"] == 1000
    assert report["batch_api_savings_usd"] == pytest.approx(float(live_total - batch_total))
    text = tierroute(stack, "report").stdout
    assert "Batch API savings:" in text and "1,000 calls at the 50% batch rate" in text


def test_every_call_after_the_first_reads_a_shared_5000_token_system_prompt(
    stack: RunningStack, api: httpx.Client
) -> None:
    assert stack.simulator_url is not None
    latency = {tier.model: 300 for tier in TIERS.tiers}  # calls overlap: priming matters
    httpx.post(f"{stack.simulator_url}/_sim/config", json={"latency_ms": latency})
    try:
        samples = sample_prompts()
        jobs = [
            {"prompt": f"{samples[n % len(samples)]['prompt']} [{n}]", "system": SHARED_SYSTEM}
            for n in range(60)
        ]
        body = "\n".join(json.dumps(job) for job in jobs).encode()
        accepted = api.post(
            "/v1/batches", content=body, headers={"content-type": "application/x-ndjson"}
        )
        assert accepted.status_code == 202, accepted.text
        batch_id = accepted.json()["id"]
        view = wait_for_batch(api, batch_id, timeout_s=180)
    finally:
        httpx.post(f"{stack.simulator_url}/_sim/reset")
    assert view["counts"]["succeeded"] == 60

    rows = query(
        stack,
        "SELECT c.model, c.cache_creation_input_tokens, c.cache_read_input_tokens, c.created_at"
        "  FROM model_calls c JOIN jobs j ON j.id = c.job_id"
        " WHERE j.batch_id = %s AND c.purpose = 'complete' ORDER BY c.created_at",
        batch_id,
    )
    by_model: dict[str, list[tuple[int, int]]] = {}
    for model, written, read, _ in rows:
        by_model.setdefault(model, []).append((written, read))
    assert len(by_model) >= 2
    for model, usages in by_model.items():
        writes = [written for written, _ in usages if written]
        assert len(writes) == 1, f"{model}: {len(writes)} cache writes"
        prefix = writes[0]
        assert usages[0] == (prefix, 0), f"{model}: the first call writes"
        assert all(u == (0, prefix) for u in usages[1:]), f"{model}: later calls read"
        print(f"{model}: 1 write of {prefix} tokens, {len(usages) - 1} reads")

    report = api.get("/v1/report").json()
    assert report["cache_savings_usd"] > 0
    assert report["cache_read_input_tokens"] == sum(read for _, _, read, _ in rows)
    text = tierroute(stack, "report").stdout
    assert "Cache savings:" in text
    print("\n".join(line for line in text.splitlines() if "savings:" in line))
