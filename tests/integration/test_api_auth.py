"""Bearer API keys: 401 without a good one, and each key sees only its own work."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.auth import KeyCache
from api.deps import get_enqueuer
from tests.conftest import Services
from tests.no_broker import NoBroker
from tierroute.store.engine import session_scope
from tierroute.store.keys import create_api_key, revoke_api_key
from tierroute.store.models import Job, ModelCall

pytestmark = pytest.mark.integration


@pytest.fixture
def client(clean_db: Services) -> Iterator[TestClient]:
    app = create_app()
    app.dependency_overrides[get_enqueuer] = NoBroker
    with TestClient(app) as test_client:
        yield test_client


def new_key(name: str = "test") -> tuple[uuid.UUID, str]:
    with session_scope() as session:
        key, raw = create_api_key(session, name)
    return key.id, raw


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def assert_401(response: object) -> None:
    assert response.status_code == 401, response.text  # type: ignore[attr-defined]
    assert response.headers["www-authenticate"] == "Bearer"  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    # The Anthropic-compatible routes answer in Anthropic's error shape.
    assert error == "unauthorized" or error["type"] == "authentication_error"


def test_missing_header_wrong_scheme_and_unknown_key_are_401(client: TestClient) -> None:
    assert_401(client.get("/v1/report"))
    assert_401(client.get("/v1/report", headers={"Authorization": "Basic dXNlcjpwYXNz"}))
    assert_401(client.get("/v1/report", headers={"Authorization": "Bearer"}))
    assert_401(client.get("/v1/report", headers=bearer("trk_not-a-key-we-issued")))
    _, raw = new_key()
    assert client.get("/v1/report", headers=bearer(raw)).status_code == 200


def test_revoked_key_is_401(client: TestClient) -> None:
    key_id, raw = new_key()
    with session_scope() as session:
        assert revoke_api_key(session, key_id)
    assert_401(client.get("/v1/report", headers=bearer(raw)))


def test_revocation_takes_effect_once_the_cache_entry_expires(client: TestClient) -> None:
    key_id, raw = new_key()
    cache: KeyCache = client.app.state.key_cache  # type: ignore[attr-defined]
    assert client.get("/v1/report", headers=bearer(raw)).status_code == 200
    with session_scope() as session:
        revoke_api_key(session, key_id)
    # Within the TTL the cached key still answers; that is the documented trade-off.
    assert client.get("/v1/report", headers=bearer(raw)).status_code == 200
    cache.ttl_s = 0.0
    cache._entries.clear()
    assert_401(client.get("/v1/report", headers=bearer(raw)))


def test_every_v1_route_requires_a_key_and_health_does_not(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    v1 = [
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        if path.startswith("/v1")
        for method, operation in operations.items()
        if {"HTTPBearer": []} in operation.get("security", [])
    ]
    v1_operations = sum(len(ops) for p, ops in schema["paths"].items() if p.startswith("/v1"))
    assert len(v1) == v1_operations >= 10  # every /v1 operation declares the bearer scheme
    some_id = str(uuid.uuid4())
    for method, path in v1:
        url = path.replace("{job_id}", some_id).replace("{batch_id}", some_id)
        url = url.replace("{message_batch_id}", some_id)
        assert_401(client.request(method, url, json={"prompt": "x"}))
    for open_path in ("/healthz", "/openapi.json", "/docs"):
        assert client.get(open_path).status_code == 200
    assert_401(client.get("/metrics"))  # every key's spend (test_metrics_access.py)
    schemes = schema["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"


def test_a_key_sees_only_its_own_jobs_batches_and_report(client: TestClient) -> None:
    a_id, a_raw = new_key("a")
    _, b_raw = new_key("b")
    a, b = bearer(a_raw), bearer(b_raw)
    job_id = client.post("/v1/jobs", json={"prompt": "hello"}, headers=a).json()["id"]
    batch = client.post(
        "/v1/batches",
        content=b'{"prompt": "one"}\n{"prompt": "two"}\n',
        headers={**a, "content-type": "application/x-ndjson"},
    )
    assert batch.status_code == 202, batch.text
    batch_id = batch.json()["id"]
    with session_scope() as session:
        jobs = session.scalars(select(Job).where(Job.api_key_id == a_id)).all()
        assert len(jobs) == 3  # the single job and both batch jobs are A's
        for job in jobs:
            job.status, job.tier = "succeeded", "haiku"
        session.add(
            ModelCall(
                job_id=uuid.UUID(job_id), purpose="complete", model="claude-haiku-4-5",
                tier="haiku", input_tokens=10, output_tokens=10, cost_usd=Decimal("0.01"),
                cost_if_opus_usd=Decimal("0.05"), latency_ms=5,
            )
        )  # fmt: skip

    def same_as_missing(method: str, path: str, kind: str, ident: str, **kw: object) -> None:
        theirs = client.request(method, path.format(ident), headers=b, **kw)  # type: ignore[arg-type]
        missing_id = str(uuid.uuid4())
        missing = client.request(method, path.format(missing_id), headers=b, **kw)  # type: ignore[arg-type]
        assert theirs.status_code == missing.status_code == 404, theirs.text
        assert theirs.json() == {"error": "not_found", "detail": f"{kind} {ident} not found"}
        assert missing.json()["detail"] == f"{kind} {missing_id} not found"

    same_as_missing("GET", "/v1/jobs/{}", "job", job_id)
    same_as_missing("POST", "/v1/jobs/{}/rating", "job", job_id, json={"satisfaction": 0.5})
    same_as_missing("POST", "/v1/jobs/{}/retry", "job", job_id)
    for path in ("/v1/batches/{}", "/v1/batches/{}/results"):
        same_as_missing("GET", path, "batch", batch_id)
    for path in ("/v1/batches/{}/cancel", "/v1/batches/{}/redrive"):
        same_as_missing("POST", path, "batch", batch_id)

    assert client.get(f"/v1/jobs/{job_id}", headers=a).json()["status"] == "succeeded"
    assert client.get(f"/v1/batches/{batch_id}", headers=a).json()["done"] is True
    rated = client.post(f"/v1/jobs/{job_id}/rating", json={"satisfaction": 0.5}, headers=a)
    assert rated.status_code == 201
    mine, theirs = (client.get("/v1/report", headers=h).json() for h in (a, b))
    assert mine["jobs_succeeded"] == 3 and mine["total_cost_usd"] == pytest.approx(0.01)
    assert theirs["jobs_succeeded"] == 0 and theirs["total_cost_usd"] == 0.0
    assert all(row["jobs"] == 0 for row in theirs["distribution"])


def test_no_key_appears_in_any_log_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    _, good = new_key()
    bad = "trk_this-secret-must-never-be-logged-0123456789"
    with caplog.at_level(logging.DEBUG):
        assert_401(client.get("/v1/report", headers=bearer(bad)))
        assert_401(client.post("/v1/jobs", json={"prompt": "x"}, headers=bearer(bad)))
        assert client.get("/v1/report", headers=bearer(good)).status_code == 200
    assert caplog.records  # something was captured, so the check below means something
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert bad not in logged and good not in logged
