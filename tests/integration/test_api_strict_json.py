"""Values Postgres cannot store (NaN, Infinity, lone surrogates, huge metadata) are a 422
that names the field, on every way in, never a 500 from the INSERT."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.deps import get_enqueuer
from api.errors import error_response
from tests.conftest import Services
from tests.integration.test_api_auth import NoBroker, bearer, new_key
from tierroute.domain.storable import MAX_METADATA_BYTES
from tierroute.store.engine import session_scope
from tierroute.store.models import Job

pytestmark = pytest.mark.integration

# Raw JSON text: Python's json module reads all of these, Postgres stores none of them.
BAD_METADATA = {
    "nan": '{"score": NaN}',
    "infinity": '{"score": -Infinity}',
    "overflow": '{"score": 1e999}',
    "nested nan": '{"a": {"b": [1, NaN]}}',
    "lone surrogate": '{"note": "\\ud800"}',
    "surrogate key": '{"\\udfff": 1}',
}


@pytest.fixture
def client(clean_db: Services) -> Iterator[TestClient]:
    app = create_app()
    app.dependency_overrides[get_enqueuer] = NoBroker
    with TestClient(app) as test_client:
        _, raw = new_key()
        test_client.headers.update(bearer(raw))
        yield test_client


def job_count() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(Job)) or 0)


def assert_422(response: object, *names: str) -> None:
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error", "detail"}
    for name in names:
        assert name in body["detail"], body


@pytest.mark.parametrize("metadata", BAD_METADATA.values(), ids=BAD_METADATA.keys())
def test_unstorable_metadata_is_422_on_every_way_in(client: TestClient, metadata: str) -> None:
    job = '{"prompt": "hello", "metadata": ' + metadata + "}"
    json_headers = {"content-type": "application/json"}
    ndjson_headers = {"content-type": "application/x-ndjson"}

    assert_422(client.post("/v1/jobs", content=job, headers=json_headers), "metadata")
    # Batch items and lines go through a strict JSON parser first: NaN and lone
    # surrogates are bad JSON there, 1e999 is a number that the metadata check refuses.
    assert_422(
        client.post("/v1/batches", content=f'[{{"prompt": "ok"}}, {job}]', headers=json_headers),
        "item 2",
    )
    ndjson = f'{{"prompt": "ok"}}\n{job}\n'
    assert_422(client.post("/v1/batches", content=ndjson, headers=ndjson_headers), "line 2")
    gzipped = {**ndjson_headers, "content-encoding": "gzip"}
    assert_422(client.post("/v1/batches", content=gzip.compress(ndjson.encode()), headers=gzipped))
    assert job_count() == 0


@pytest.mark.parametrize("field", ["prompt", "system"])
def test_lone_surrogates_in_prompt_or_system_are_422(client: TestClient, field: str) -> None:
    job = '{"prompt": "hello", "' + field + '": "bad \\udc80 text"}'
    headers = {"content-type": "application/json"}
    assert_422(client.post("/v1/jobs", content=job, headers=headers), field)
    assert_422(client.post("/v1/batches", content=f"[{job}]", headers=headers), "surrogate")
    assert_422(client.post("/v1/route", content=job, headers=headers), field)
    assert job_count() == 0


def test_a_surrogate_in_a_rating_comment_is_422(client: TestClient) -> None:
    some_job = uuid.uuid4()
    response = client.post(
        f"/v1/jobs/{some_job}/rating",
        content='{"satisfaction": 0.5, "comment": "\\ud83d"}',
        headers={"content-type": "application/json"},
    )
    assert_422(response, "comment")


def test_an_error_detail_that_quotes_a_surrogate_is_still_json() -> None:
    # A detail may quote client input; naming the problem must not become a 500.
    response = error_response(422, "invalid_input", "force_tier: '\ud800' is not a tier")
    assert json.loads(response.body)["detail"] == "force_tier: '\\ud800' is not a tier"


def test_metadata_over_the_size_limit_is_422_and_at_the_limit_is_accepted(
    client: TestClient,
) -> None:
    # {"k":"xxx..."} is 8 bytes of JSON around the value.
    fits = {"k": "x" * (MAX_METADATA_BYTES - 8)}
    assert len(json.dumps(fits, separators=(",", ":"))) == MAX_METADATA_BYTES
    assert client.post("/v1/jobs", json={"prompt": "a", "metadata": fits}).status_code == 202
    too_big = {"k": "x" * (MAX_METADATA_BYTES - 7)}
    assert_422(client.post("/v1/jobs", json={"prompt": "a", "metadata": too_big}), "metadata")
    deep: dict[str, object] = {}
    for _ in range(100):
        deep = {"d": deep}
    assert_422(client.post("/v1/jobs", json={"prompt": "a", "metadata": deep}), "deeper")
    assert job_count() == 1
