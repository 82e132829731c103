"""/v1/route's classifier call is billed to the caller's key, within its daily budget."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.deps import get_enqueuer
from tests.conftest import Services
from tests.no_broker import NoBroker
from tierroute.devstack.simulator import RunningSimulator
from tierroute.domain.specs import JobSpec
from tierroute.pipeline.budgets import worst_case_cost
from tierroute.pipeline.steps import classify_job
from tierroute.runtime import get_runtime
from tierroute.store.engine import session_scope
from tierroute.store.job_reads import read_job_view
from tierroute.store.jobs import create_job
from tierroute.store.keys import create_api_key

pytestmark = pytest.mark.integration

PROMPT = "Design a multi-region failover plan for a payments database."


@pytest.fixture
def client(
    clean_db: Services, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "llm")
    app = create_app()
    app.dependency_overrides[get_enqueuer] = NoBroker
    with TestClient(app) as test_client:
        yield test_client


def new_key(budget: Decimal | None = None) -> tuple[uuid.UUID, dict[str, str]]:
    with session_scope() as session:
        key, raw = create_api_key(session, f"team-{uuid.uuid4().hex[:6]}", daily_budget_usd=budget)
    return key.id, {"Authorization": f"Bearer {raw}"}


def billed_to_key(key_id: uuid.UUID) -> Decimal:
    with session_scope() as session:
        return Decimal(
            session.execute(
                text("SELECT coalesce(sum(cost_usd), 0) FROM model_calls WHERE api_key_id = :k"),
                {"k": key_id},
            ).scalar_one()
        )


def test_route_classifier_calls_are_billed_to_the_callers_key(client: TestClient) -> None:
    key, headers = new_key()
    _, other = new_key()
    for _ in range(3):
        answer = client.post("/v1/route", json={"prompt": PROMPT}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["classifier"] == "llm"
    billed = billed_to_key(key)
    assert billed > 0
    mine = client.get("/v1/report", headers=headers).json()
    assert mine["classifier_calls"] == 3
    assert Decimal(str(mine["total_cost_usd"])) == pytest.approx(billed)
    assert client.get("/v1/report", headers=other).json()["classifier_calls"] == 0


def test_route_is_refused_when_the_budget_has_no_room(
    client: TestClient, sim: RunningSimulator
) -> None:
    _, headers = new_key(Decimal("0.0001"))  # less than one classifier call
    answer = client.post("/v1/route", json={"prompt": PROMPT}, headers=headers)
    assert answer.status_code == 402, answer.text
    assert answer.json()["error"] == "budget_exceeded"
    assert "daily budget" in answer.json()["detail"]
    assert sim.stats()["total"] == 0  # nothing was called, so nothing was billed
    # A forced tier calls nobody and is still answered.
    forced = client.post("/v1/route", json={"prompt": PROMPT, "force_tier": 1}, headers=headers)
    assert forced.status_code == 200, forced.text


def test_route_spend_counts_against_the_keys_job_budget(client: TestClient) -> None:
    key, headers = new_key(Decimal("0.004"))
    while True:  # spend the budget on routing alone, until it refuses
        answer = client.post("/v1/route", json={"prompt": PROMPT}, headers=headers)
        if answer.status_code == 402:
            break
        assert answer.status_code == 200, answer.text
    spent = billed_to_key(key)
    assert 0 < spent <= Decimal("0.004")
    # A job that would fit an untouched budget, not what routing left of it, is
    # rejected: the routing spend counts.
    rt = get_runtime()
    haiku = rt.tiers.get("haiku")
    max_tokens = 16
    while worst_case_cost(haiku, PROMPT, None, max_tokens) <= Decimal("0.004") - spent:
        max_tokens += 16
    assert worst_case_cost(haiku, PROMPT, None, max_tokens) < Decimal("0.004")
    spec = JobSpec(prompt=PROMPT, force_tier="haiku", max_tokens=max_tokens)
    with session_scope() as session:
        job, _ = create_job(session, spec, default_max_tokens=16, api_key_id=key)
    assert classify_job(rt, job.id) is None
    assert str(read_job_view(job.id)["error"]).startswith("budget_exceeded")
