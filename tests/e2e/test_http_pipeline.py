"""Through HTTP into real Celery worker processes and back out of Postgres."""

from __future__ import annotations

import json
import time

import httpx
import psycopg
import pytest

from tests.conftest import Services
from tests.e2e.conftest import FLOWER_AUTH, ON_EVERY_BROKER, wait_for_batch, wait_for_job
from tierroute.devstack.stack import RunningStack

pytestmark = pytest.mark.e2e

LESSON_EXAMPLES = {
    "haiku": 'Format this JSON: {"name":"John","age":30}',
    "sonnet": "Write a Python function to merge two sorted lists into one sorted list",
    "opus": (
        "Review this distributed system architecture for scalability bottlenecks, "
        "consistency trade-offs, and failure modes: a Postgres primary with two "
        "replicas, Kafka between services, and a Redis cache in front of the API."
    ),
}


@ON_EVERY_BROKER
def test_health_says_database_and_broker_are_up(api: httpx.Client) -> None:
    health = api.get("/healthz")
    assert health.status_code == 200
    assert health.json()["database"] == "ok" and health.json()["broker"] == "ok"
    assert health.json()["simulated"] is True


@ON_EVERY_BROKER
def test_lesson_examples_succeed_on_their_tiers(api: httpx.Client) -> None:
    ids = {}
    for tier, prompt in LESSON_EXAMPLES.items():
        response = api.post("/v1/jobs", json={"prompt": prompt})
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "queued"
        ids[tier] = response.json()["id"]
    for tier, job_id in ids.items():
        view = wait_for_job(api, job_id)
        assert view["status"] == "succeeded", view
        assert view["tier"] == tier
        assert view["cost_usd"] > 0 and view["cost_if_opus_usd"] > 0
        assert view["routing"]["reasoning"] and view["routing"]["classifier"] == "llm"
        assert view["result"].startswith("[simulated")
        assert view["latency_ms"] is not None and view["attempts"] == 1


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [
        ({"prompt": ""}, 422, "invalid_request", "prompt"),
        ({"prompt": "   "}, 422, "invalid_request", "must not be empty"),
        ({"prompt": "hi", "force_tier": 7}, 422, "invalid_request", "force_tier"),
        ({"prompt": "hi", "max_tokens": -1}, 422, "invalid_request", "max_tokens"),
        ({"text": "hi"}, 422, "invalid_request", "prompt"),
    ],
)
def test_bad_jobs_get_a_4xx_that_names_the_problem(
    api: httpx.Client, body: dict[str, object], status: int, code: str, fragment: str
) -> None:
    response = api.post("/v1/jobs", json=body)
    assert response.status_code == status
    assert response.json()["error"] == code
    assert fragment in response.json()["detail"]


def test_non_json_body_is_a_400(api: httpx.Client) -> None:
    response = api.post(
        "/v1/jobs", content=b"prompt=hello", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_json", "detail": "request body is not valid JSON"}


@pytest.mark.parametrize("job_id", ["5b0c6c57-8a8e-4a8f-9d0e-0d6c1d0f9a11", "not-an-id"])
def test_unknown_job_is_a_404(api: httpx.Client, job_id: str) -> None:
    response = api.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found" and job_id in response.json()["detail"]


@ON_EVERY_BROKER
def test_idempotency_key_returns_the_first_job(api: httpx.Client) -> None:
    headers = {"Idempotency-Key": "e2e-once"}
    first = api.post("/v1/jobs", json={"prompt": "What is 2+2?"}, headers=headers)
    second = api.post("/v1/jobs", json={"prompt": "What is 2+2?"}, headers=headers)
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["id"] == second.json()["id"]


@ON_EVERY_BROKER
def test_batch_runs_and_streams_results(api: httpx.Client) -> None:
    lines = [{"prompt": f"Convert {n} km to miles.", "force_tier": 1 + n % 3} for n in range(9)]
    body = "\n".join(json.dumps(line) for line in lines).encode()
    accepted = api.post(
        "/v1/batches", content=body, headers={"content-type": "application/x-ndjson"}
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["count"] == 9
    batch_id = accepted.json()["id"]
    view = wait_for_batch(api, batch_id)
    assert view["counts"]["succeeded"] == 9 and view["progress"] == 1.0
    assert view["by_tier"] == {"haiku": 3, "sonnet": 3, "opus": 3}
    results = api.get(f"/v1/batches/{batch_id}/results")
    assert results.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in results.text.splitlines()]
    assert len(rows) == 9 and {row["batch_id"] for row in rows} == {batch_id}
    assert all(row["routing"]["reasoning"] == "Manual override" for row in rows)


def test_a_bad_batch_line_is_refused_whole(api: httpx.Client, services: Services) -> None:
    body = b'{"prompt": "fine"}\n{"prompt": "also fine"}\n{"prompt": \n'
    response = api.post(
        "/v1/batches", content=body, headers={"content-type": "application/x-ndjson"}
    )
    assert response.status_code == 422
    assert "line 3" in response.json()["detail"]
    with psycopg.connect(services.database_url.replace("+psycopg", "")) as conn:
        fine = conn.execute("SELECT count(*) FROM jobs WHERE prompt = 'also fine'").fetchone()
    assert fine == (0,)


def test_rating_shows_up_in_tier_quality(api: httpx.Client, services: Services) -> None:
    job = api.post("/v1/jobs", json={"prompt": LESSON_EXAMPLES["opus"]}).json()
    assert wait_for_job(api, job["id"])["tier"] == "opus"
    rated = api.post(f"/v1/jobs/{job['id']}/rating", json={"satisfaction": 0.25})
    assert rated.status_code == 201
    bad = api.post(f"/v1/jobs/{job['id']}/rating", json={"satisfaction": 1.5})
    assert bad.status_code == 422 and "satisfaction" in bad.json()["detail"]
    # Nothing here reads the rollups: the classify worker's beat folds the rating in.
    deadline = time.monotonic() + 30
    with psycopg.connect(services.database_url.replace("+psycopg", ""), autocommit=True) as conn:
        want = conn.execute(
            "SELECT count(DISTINCT r.job_id) FROM ratings r JOIN jobs j ON j.id = r.job_id"
            " WHERE j.tier = 'opus' AND j.status = 'succeeded'"
        ).fetchone()
        while True:
            row = conn.execute(
                "SELECT rated_jobs, avg_satisfaction FROM tier_quality WHERE tier = 'opus'"
            ).fetchone()
            if (row is not None and want is not None and row[0] == want[0]) or (
                time.monotonic() > deadline
            ):
                break
            time.sleep(0.5)
    assert want is not None and want[0] >= 1
    assert row is not None and row[0] == want[0]
    report = api.get("/v1/report").json()
    opus = next(r for r in report["distribution"] if r["tier"] == "opus")
    assert opus["rated_jobs"] == row[0]
    assert opus["avg_satisfaction"] == pytest.approx(row[1])


def test_report_agrees_with_the_savings_view(api: httpx.Client, services: Services) -> None:
    report = api.get("/v1/report").json()
    # The report is the caller's: calls billed to its jobs and its /v1/route calls.
    with psycopg.connect(services.database_url.replace("+psycopg", "")) as conn:
        total, if_opus = conn.execute(
            "SELECT sum(c.cost_usd), sum(c.cost_if_opus_usd) FROM model_calls c "
            "LEFT JOIN jobs j ON j.id = c.job_id "
            "WHERE coalesce(c.api_key_id, j.api_key_id) IS NOT NULL"
        ).fetchone()  # type: ignore[misc]
    assert report["total_cost_usd"] == pytest.approx(float(total))
    assert report["cost_if_all_opus_usd"] == pytest.approx(float(if_opus))
    assert report["simulated"] is True


def test_route_decides_without_executing(api: httpx.Client) -> None:
    decision = api.post("/v1/route", json={"prompt": LESSON_EXAMPLES["opus"]})
    assert decision.status_code == 200
    body = decision.json()
    assert body["tier"] == "opus" and body["model"] == "claude-opus-4-6"
    assert body["classifier"] == "llm" and body["simulated"] is True
    forced = api.post("/v1/route", json={"prompt": "x", "force_tier": "haiku"}).json()
    assert forced["reasoning"] == "Manual override" and forced["confidence"] == 1.0


def test_metrics_are_prometheus_text(api: httpx.Client) -> None:
    metrics = api.get("/metrics")
    assert metrics.status_code == 200
    assert 'tierroute_jobs{status="succeeded"}' in metrics.text


def test_flower_lists_the_workers_and_the_four_queues(stack: RunningStack) -> None:
    assert stack.flower_url is not None
    with httpx.Client(base_url=stack.flower_url, timeout=30) as flower:
        assert flower.get("/api/workers").status_code == 401  # basic auth is on
        workers: dict[str, object] = {}
        for _ in range(60):
            response = flower.get("/api/workers", auth=FLOWER_AUTH, params={"refresh": "true"})
            workers = response.json() if response.status_code == 200 else {}
            if len(workers) >= 3:
                break
            time.sleep(0.5)
        names = sorted(name.split("@")[0] for name in workers)
        assert names == ["classify", "tiers", "tiers2"]  # two tier worker processes
        lengths = flower.get("/api/queues/length", auth=FLOWER_AUTH)
        assert lengths.status_code == 200
        queues = {q["name"]: q["messages"] for q in lengths.json()["active_queues"]}
        assert set(queues) == {"classify", "haiku", "sonnet", "opus"}
        assert all(isinstance(n, int) for n in queues.values())


def test_workers_name_their_broker_transport(stack: RunningStack) -> None:
    # On Redis, the project's transport (one client per channel, worker/redis_transport.py).
    expected = (
        "worker.redis_transport.Transport"
        if stack.broker_url.startswith("redis://")
        else "kombu.transport.pyamqp.Transport"
    )
    workers = [c for c in stack.children if c.name.startswith("worker-")]
    assert len(workers) == 3  # classify and two tier workers
    for worker in workers:
        assert f"broker transport: {expected}" in worker.log_path.read_text(errors="replace")
