"""The API's front door: the key and the body size are decided from the headers, before
any body is read; gzip bodies are read whole (every member) or refused, never cut short."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.types import Message, Receive, Scope, Send

from api.app import create_app
from api.deps import get_enqueuer
from api.ingress import BATCH_BODY_BYTES, SINGLE_JOB_BODY_BYTES, SMALL_BODY_BYTES, Ingress
from tests.conftest import Services
from tests.integration.test_api_auth import NoBroker, bearer, new_key
from tierroute.devstack.procs import free_port
from tierroute.store.engine import session_scope
from tierroute.store.ingest import MAX_BLANK_LINES
from tierroute.store.models import Job

pytestmark = pytest.mark.integration

SOME_ID = uuid.UUID(int=7)
BODY_ROUTES = ["/v1/jobs", "/v1/route", f"/v1/jobs/{SOME_ID}/rating", "/v1/batches"]


@contextmanager
def serve_api() -> Iterator[int]:
    """The real app under uvicorn in a thread: `Expect: 100-continue` needs a real server."""
    port = free_port()
    app = create_app()
    app.dependency_overrides[get_enqueuer] = NoBroker
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="ingress-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def port(clean_db: Services) -> Iterator[int]:
    with serve_api() as serving:
        yield serving


@pytest.fixture
def client(clean_db: Services) -> Iterator[TestClient]:
    app = create_app()
    app.dependency_overrides[get_enqueuer] = NoBroker
    with TestClient(app) as test_client:
        _, raw = new_key()
        test_client.headers.update(bearer(raw))
        yield test_client


def first_answer(port: int, path: str, length: int, headers: dict[str, str]) -> tuple[int, dict]:
    """Send only the head of a POST that promises `length` bytes and waits to be told to
    go on; return the server's first answer: its status and JSON body (if any)."""
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {length}"]
    head += ["Content-Type: application/json", "Expect: 100-continue"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {data!r}"
            data += chunk
        raw_head, _, body = data.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = dict(line.lower().split(": ", 1) for line in lines[1:])
        if status == 100:
            return status, {}
        while len(body) < int(fields.get("content-length", 0)):
            body += sock.recv(65536)
    return status, json.loads(body)


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_no_key_is_401_before_the_body_is_asked_for(port: int, path: str) -> None:
    # A 256 MiB promise: were the body wanted, the server would say 100 Continue first.
    status, body = first_answer(port, path, 256 << 20, {})
    assert status == 401
    assert body["error"] == "unauthorized"
    status, body = first_answer(port, path, 256 << 20, bearer("trk_not-a-key-we-issued"))
    assert (status, body["detail"]) == (401, "unknown or revoked API key")


@pytest.mark.parametrize(
    ("path", "limit", "named"),
    [
        ("/v1/jobs", SINGLE_JOB_BODY_BYTES, "8 MiB"),
        ("/v1/route", SINGLE_JOB_BODY_BYTES, "8 MiB"),
        (f"/v1/jobs/{SOME_ID}/rating", SMALL_BODY_BYTES, "64 KiB"),
        ("/v1/batches", BATCH_BODY_BYTES, "256 MiB"),
    ],
)
def test_a_declared_length_over_the_route_limit_is_413_at_once(
    port: int, path: str, limit: int, named: str
) -> None:
    _, raw = new_key()
    status, body = first_answer(port, path, limit + 1, bearer(raw))
    assert status == 413
    assert body == {
        "error": "payload_too_large",
        "detail": f"request body larger than this route's limit of {named}",
    }
    # Up to the limit, the server asks for the body.
    assert first_answer(port, path, limit, bearer(raw))[0] == 100


def test_a_chunked_body_past_the_limit_is_413_as_it_streams(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"prompt": "'
        for _ in range(12):
            yield b"x" * (1 << 20)
        yield b'"}'

    response = client.post("/v1/jobs", content=chunks())  # no Content-Length: chunked
    assert response.status_code == 413, response.text
    assert response.json() == {
        "error": "payload_too_large",
        "detail": "request body larger than this route's limit of 8 MiB",
    }


def test_a_streamed_body_is_cut_off_at_the_limit_not_read_to_the_end() -> None:
    taken = 0
    sent: list[Message] = []

    async def endless_body() -> Message:
        nonlocal taken
        taken += 1
        return {"type": "http.request", "body": b"x" * (1 << 20), "more_body": True}

    async def reads_everything(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass

    async def record(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/anything", "headers": []}
    anyio.run(Ingress(reads_everything), scope, endless_body, record)
    assert taken == SINGLE_JOB_BODY_BYTES // (1 << 20) + 1
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"] == "payload_too_large"


def test_a_good_key_still_passes_and_bodies_under_the_limit_work(client: TestClient) -> None:
    response = client.post("/v1/jobs", json={"prompt": "p" * 800_000, "system": "s" * 800_000})
    assert response.status_code == 202, response.text


def stored_prompts() -> list[str]:
    with session_scope() as session:
        return sorted(session.scalars(select(Job.prompt)))


def post_gzip(client: TestClient, body: bytes) -> object:
    headers = {"content-type": "application/x-ndjson", "content-encoding": "gzip"}
    return client.post("/v1/batches", content=body, headers=headers)


def ndjson(*prompts: str) -> bytes:
    return b"".join(json.dumps({"prompt": p}).encode() + b"\n" for p in prompts)


def test_every_gzip_member_is_read(client: TestClient) -> None:
    # `cat a.gz b.gz`: one gzip stream of two members.
    body = gzip.compress(ndjson("a1", "a2", "a3")) + gzip.compress(ndjson("b1", "b2", "b3"))
    response = post_gzip(client, body)
    assert response.status_code == 202, response.text  # type: ignore[attr-defined]
    assert response.json()["count"] == 6  # type: ignore[attr-defined]
    assert stored_prompts() == ["a1", "a2", "a3", "b1", "b2", "b3"]


@pytest.mark.parametrize(
    ("tail", "fragment"),
    [
        (b"trailing garbage", "data after gzip member 1 is not gzip"),
        (b"\n", "gzip member 2 is truncated"),
        (gzip.compress(ndjson("b1"))[:-4], "gzip member 2 is truncated"),
    ],
)
def test_data_after_a_gzip_member_is_refused_not_dropped(
    client: TestClient, tail: bytes, fragment: str
) -> None:
    response = post_gzip(client, gzip.compress(ndjson("a1", "a2")) + tail)
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    assert fragment in response.json()["detail"]  # type: ignore[attr-defined]
    assert stored_prompts() == []


def test_a_flood_of_blank_lines_is_refused(client: TestClient) -> None:
    body = gzip.compress(b"\n" * (20 * MAX_BLANK_LINES) + ndjson("late"))
    response = post_gzip(client, body)
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    assert "blank lines" in response.json()["detail"]  # type: ignore[attr-defined]
    assert stored_prompts() == []
