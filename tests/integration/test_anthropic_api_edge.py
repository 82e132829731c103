"""The Anthropic-compatible routes at the HTTP edge, with no workers: waits, limits, errors."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import get_enqueuer
from api.routes.messages import MAX_WAIT_S, wait_budget_s
from tests.anthropic_spec import problems
from tests.conftest import Services
from tests.no_broker import NoBroker
from tierroute.store.engine import session_scope
from tierroute.store.keys import create_api_key

pytestmark = pytest.mark.integration


@pytest.fixture
def client(clean_db: Services) -> Iterator[TestClient]:
    app = create_app()
    app.dependency_overrides[get_enqueuer] = NoBroker
    with TestClient(app) as test_client:
        with session_scope() as session:  # the app's startup made the engine
            _, raw = create_api_key(session, "edge")
        test_client.headers["x-api-key"] = raw
        # As the SDK does: no wait here outlives the test (the route answers 2 s before).
        test_client.headers["x-stainless-timeout"] = "5"
        yield test_client


def request_body(**params: Any) -> dict[str, Any]:
    body = {
        "model": "tierroute-auto",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    return {**body, **params}


def test_a_wait_that_runs_out_is_a_504_naming_the_job(client: TestClient) -> None:
    # The SDK sends its timeout; the route answers two seconds before it.
    answer = client.post("/v1/messages", json=request_body(), headers={"x-stainless-timeout": "3"})
    assert answer.status_code == 504
    assert problems("ErrorResponse", answer.json()) == []
    assert answer.json()["error"]["type"] == "timeout_error"
    job_id = answer.headers["x-tierroute-job-id"]
    assert job_id in answer.json()["error"]["message"]
    assert answer.headers["x-should-retry"] == "false"  # a retry would be a second job
    # The job is there to poll, through tierroute's own API.
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"


def test_the_wait_follows_the_clients_timeout_within_bounds() -> None:
    assert wait_budget_s("60") == 58.0
    assert wait_budget_s(None) == wait_budget_s("junk") == MAX_WAIT_S
    assert wait_budget_s("100000") == MAX_WAIT_S and wait_budget_s("1") == 0.5


def test_a_missing_key_is_anthropics_authentication_error(client: TestClient) -> None:
    answer = client.post("/v1/messages", json=request_body(), headers={"x-api-key": ""})
    assert answer.status_code == 401
    assert problems("ErrorResponse", answer.json()) == []
    assert answer.json()["error"]["type"] == "authentication_error"
    # tierroute's own routes keep their own shape.
    assert client.get("/v1/report", headers={"x-api-key": ""}).json()["error"] == "unauthorized"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (request_body(top_k=-1), "top_k"),
        (request_body(max_tokens=None), "max_tokens"),
        ({"model": "haiku", "max_tokens": 5}, "messages: Field required"),
        (request_body(messages=[{"role": "system", "content": "x"}]), "messages.0.role"),
        (request_body(metadata={"user_id": 5}), "metadata"),
    ],
)
def test_bad_parameters_are_400s_that_name_them(
    client: TestClient, body: dict[str, Any], fragment: str
) -> None:
    answer = client.post("/v1/messages", json=body)
    assert answer.status_code == 400, answer.text
    assert problems("ErrorResponse", answer.json()) == []
    assert fragment in answer.json()["error"]["message"]


def test_a_batch_is_created_and_read_in_anthropics_shapes(client: TestClient) -> None:
    lines = [{"custom_id": f"q-{n}", "params": request_body()} for n in range(3)]
    body = gzip.compress(json.dumps({"requests": lines}).encode())
    created = client.post(
        "/v1/messages/batches",
        content=body,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert created.status_code == 200, created.text
    batch = created.json()
    assert problems("MessageBatch", batch) == []
    assert batch["processing_status"] == "in_progress" and batch["results_url"] is None
    assert batch["request_counts"]["processing"] == 3
    # The same batch, through tierroute's own API.
    assert client.get(f"/v1/batches/{batch['id']}").json()["count"] == 3
    cancelled = client.post(f"/v1/messages/batches/{batch['id']}/cancel").json()
    assert problems("MessageBatch", cancelled) == []
    assert cancelled["processing_status"] == "ended"
    assert cancelled["request_counts"]["canceled"] == 3 and cancelled["cancel_initiated_at"]
    results = client.get(cancelled["results_url"]).text.splitlines()
    assert sorted(json.loads(line)["custom_id"] for line in results) == ["q-0", "q-1", "q-2"]
    for line in results:
        assert problems("MessageBatchIndividualResponse", json.loads(line)) == []


def test_batches_list_newest_first_with_cursors(client: TestClient) -> None:
    ids = []
    for n in range(3):
        lines = [{"custom_id": f"l-{n}", "params": request_body()}]
        ids.append(client.post("/v1/messages/batches", json={"requests": lines}).json()["id"])
    first = client.get("/v1/messages/batches", params={"limit": 2}).json()
    assert problems("ListResponse_MessageBatch_", first) == []
    assert [b["id"] for b in first["data"]] == [ids[2], ids[1]] and first["has_more"]
    rest = client.get("/v1/messages/batches", params={"after_id": first["last_id"]}).json()
    assert [b["id"] for b in rest["data"]] == [ids[0]] and not rest["has_more"]
    back = client.get("/v1/messages/batches", params={"before_id": ids[0], "limit": 1}).json()
    assert [b["id"] for b in back["data"]] == [ids[1]] and back["has_more"]


def test_another_keys_batch_is_not_found(client: TestClient) -> None:
    lines = [{"custom_id": "o-1", "params": request_body()}]
    batch_id = client.post("/v1/messages/batches", json={"requests": lines}).json()["id"]
    with session_scope() as session:
        _, other = create_api_key(session, "other")
    answer = client.get(f"/v1/messages/batches/{batch_id}", headers={"x-api-key": other})
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "not_found_error"


def test_a_custom_id_used_twice_in_a_tierroute_batch_is_refused(client: TestClient) -> None:
    lines = [{"prompt": "a", "custom_id": "same"}, {"prompt": "b", "custom_id": "same"}]
    answer = client.post(
        "/v1/batches",
        content="".join(json.dumps(line) + "\n" for line in lines),
        headers={"content-type": "application/x-ndjson"},
    )
    assert answer.status_code == 422
    assert "job 2: custom_id 'same' is used twice" in answer.json()["detail"]
