"""/metrics after real jobs through the real API and Celery workers.

Its own stack, whose workers get a tight Opus request limit, so that the shared
rate limiter makes real jobs wait and the waits show up in the API's /metrics.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import redis

from api.metrics import QUEUES, SERIES
from tests.conftest import Services, clear_rate_limits, truncate_all
from tests.e2e.conftest import started_stack, wait_for_job
from tests.metrics_text import assert_matches_postgres, names, parse_samples, value
from tierroute.config import default_tier_table
from tierroute.devstack.stack import RunningStack
from tierroute.llm.ratelimit import WAIT_SECONDS_KEY, WAITS_KEY

pytestmark = pytest.mark.e2e
# One Opus request every 2 s across all workers: three Opus jobs at once must wait.
OPUS_LIMITS = {"opus": {"rpm": 30}}
FORCED = ["haiku", "haiku", "sonnet", "opus", "opus", "opus"]
ROUTED = ['Format this JSON: {"a": 1}', "Write a haiku about queues"]


@pytest.fixture(scope="module")
def stack(services: Services) -> Iterator[RunningStack]:
    truncate_all(services.database_url)
    clear_rate_limits(services.broker_url)
    conn = redis.Redis.from_url(services.broker_url)
    conn.delete(WAITS_KEY, WAIT_SECONDS_KEY)
    conn.close()
    try:
        with started_stack(
            services,
            "tierroute-e2e-metrics-",
            classify_concurrency=4,
            tier_concurrency=8,
            env={
                "TIERROUTE_RATE_LIMIT_OVERRIDES": json.dumps(OPUS_LIMITS),
                "TIERROUTE_CLASSIFIER": "llm",  # the classify calls are counted below
            },
        ) as running:
            yield running
    finally:
        clear_rate_limits(services.broker_url)


def test_metrics_after_real_jobs_match_postgres_broker_and_limiter(
    api: httpx.Client, stack: RunningStack
) -> None:
    ids = [api.post("/v1/jobs", json={"prompt": f"job {i}", "force_tier": tier}).json()["id"]
           for i, tier in enumerate(FORCED)]  # fmt: skip
    ids += [api.post("/v1/jobs", json={"prompt": prompt}).json()["id"] for prompt in ROUTED]
    for job_id in ids:
        assert wait_for_job(api, job_id)["status"] == "succeeded"

    response = api.get("/metrics")
    assert response.status_code == 200
    samples = parse_samples(response.text)
    served = names(samples)
    for series in SERIES:
        suffix = "_bucket" if series.endswith("_seconds") else ""
        assert f"{series}{suffix}" in served, series

    # Jobs, calls, dollars, tokens and latency: the same figures as Postgres.
    assert_matches_postgres(samples, stack.database_url)
    for tier in ("haiku", "sonnet", "opus"):
        forced = FORCED.count(tier)
        routed = value(samples, "tierroute_jobs_by_tier", status="succeeded", tier=tier)
        assert routed >= forced
    assert value(samples, "tierroute_model_calls_total", tier="haiku", purpose="classify") == len(
        ROUTED
    )
    # Everything ran, so every queue is empty.
    assert {q: value(samples, "tierroute_queue_depth", queue=q) for q in QUEUES} == dict.fromkeys(
        QUEUES, 0
    )
    # The limiter made Opus jobs wait, in the worker processes; the API reports it.
    conn = redis.Redis.from_url(stack.broker_url)
    opus = default_tier_table().get("opus").model
    field = f"{opus}|requests"
    counted = int(conn.hget(WAITS_KEY, field) or 0)
    waited_s = float(conn.hget(WAIT_SECONDS_KEY, field) or 0)
    conn.close()
    labels = {"tier": "opus", "model": opus, "limit": "requests"}
    assert counted >= 2
    assert value(samples, "tierroute_ratelimit_waits_total", **labels) == counted
    assert value(samples, "tierroute_ratelimit_wait_seconds_total", **labels) == pytest.approx(
        waited_s
    )
    assert value(
        samples, "tierroute_http_requests_total", method="POST", route="/v1/jobs", status="202"
    ) == len(ids)
