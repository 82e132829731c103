"""Hostile bodies against the running stack: oversized, gzip tricks, NaN and lone
surrogates each get a documented 4xx in the `{error, detail}` shape, never a 5xx."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.test_api_ingress import first_answer
from tierroute.devstack.stack import RunningStack
from tierroute.store.ingest import MAX_BATCH, MAX_BLANK_LINES

pytestmark = pytest.mark.e2e

JSON = {"content-type": "application/json"}
NDJSON = {"content-type": "application/x-ndjson"}
GZIP = {**NDJSON, "content-encoding": "gzip"}
SOME_JOB = str(uuid.UUID(int=7))


def lines(*objects: Any) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in objects)


# (path, headers, body, expected status)
CASES: list[tuple[str, dict[str, str], bytes, int]] = [
    ("/v1/jobs", JSON, b'{"prompt": "a", "metadata": {"x": NaN}}', 422),
    ("/v1/jobs", JSON, b'{"prompt": "a", "metadata": {"x": -Infinity}}', 422),
    ("/v1/jobs", JSON, b'{"prompt": "a", "metadata": {"x": 1e999}}', 422),
    ("/v1/jobs", JSON, b'{"prompt": "a", "metadata": {"x": "\\ud800"}}', 422),
    ("/v1/jobs", JSON, b'{"prompt": "a \\udc00 b"}', 422),
    ("/v1/jobs", JSON, json.dumps({"prompt": "a", "metadata": {"k": "x" * 20_000}}).encode(), 422),
    ("/v1/route", JSON, b'{"prompt": "\\ud800"}', 422),
    (f"/v1/jobs/{SOME_JOB}/rating", JSON, b'{"satisfaction": NaN}', 422),
    ("/v1/batches", JSON, b'[{"prompt": "a"}, {"prompt": "b", "metadata": {"x": NaN}}]', 422),
    ("/v1/batches", JSON, b'[{"prompt": "a"}, {"prompt": "\\ud800"}]', 422),
    ("/v1/batches", JSON, b'{"jobs": [{"prompt": "a", "metadata": {"x": 1e999}}]}', 422),
    ("/v1/batches", NDJSON, b'{"prompt": "a", "metadata": {"x": NaN}}\n', 422),
    ("/v1/batches", NDJSON, b'{"prompt": "a", "metadata": {"x": "\\ud800"}}\n', 422),
    ("/v1/batches", JSON, b"[" + b",".join([b'{"prompt":"p"}'] * (MAX_BATCH + 1)) + b"]", 422),
    ("/v1/batches", GZIP, gzip.compress(lines({"prompt": "a"})) + b"garbage", 422),
    ("/v1/batches", GZIP, gzip.compress(lines({"prompt": "a"}))[:-5], 422),
    ("/v1/batches", GZIP, gzip.compress(b"\n" * (3 * MAX_BLANK_LINES)), 422),
    ("/v1/batches", {**GZIP, "content-encoding": "br"}, b"x", 422),
]


def documented(schema: dict[str, Any], path: str, status: int) -> bool:
    template = path.replace(SOME_JOB, "{job_id}")
    return str(status) in schema["paths"][template]["post"]["responses"]


@pytest.mark.parametrize(
    ("path", "headers", "body", "status"),
    CASES,
    ids=[f"{i}:{case[0].split('/')[2]}" for i, case in enumerate(CASES)],
)
def test_hostile_bodies_get_a_documented_4xx(
    api: httpx.Client, path: str, headers: dict[str, str], body: bytes, status: int
) -> None:
    response = api.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error", "detail"}
    assert documented(api.get("/openapi.json").json(), path, status)


def test_every_gzip_member_counts(api: httpx.Client) -> None:
    body = gzip.compress(lines({"prompt": "a1"}, {"prompt": "a2"})) + gzip.compress(
        lines({"prompt": "b1"})
    )
    response = api.post("/v1/batches", content=body, headers=GZIP)
    assert response.status_code == 202, response.text
    assert response.json()["count"] == 3


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/route", "/v1/batches"])
def test_oversized_or_unauthenticated_bodies_are_refused_before_they_are_read(
    stack: RunningStack, path: str
) -> None:
    port = urlsplit(stack.api_url).port
    assert port is not None
    assert first_answer(port, path, 1 << 30, {})[0] == 401
    key = {"Authorization": f"Bearer {stack.api_key}"}
    status, body = first_answer(port, path, 1 << 30, key)
    assert (status, body["error"]) == (413, "payload_too_large")
