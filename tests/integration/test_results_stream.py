"""GET /v1/batches/{id}/results served for real: readers that stop reading hold no
database connection, cannot take the API down, and leave no open transaction."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import httpx
import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from api.app import create_app
from api.deps import get_enqueuer
from tests.conftest import Services
from tests.integration.test_api_auth import NoBroker, bearer, new_key
from tierroute.devstack.procs import free_port
from tierroute.store.engine import session_scope
from tierroute.store.job_reads import read_job_view
from tierroute.store.models import Job
from tierroute.store.results import FINISHED

pytestmark = pytest.mark.integration

# TIERROUTE_DB_POOL_SIZE; the API's engine keeps twice as many connections.
POOL_SIZE = 2
POOL_CONNECTIONS = 2 * POOL_SIZE
READERS = POOL_CONNECTIONS + 2
# Far more than a parked reader's socket buffers hold, so its stream stays open.
JOBS, RESULT_BYTES = 2000, 8000


@dataclass(frozen=True)
class Api:
    url: str
    token: str
    batch_id: uuid.UUID
    job_id: uuid.UUID
    database: str


@contextmanager
def serve(app_url_port: int) -> Iterator[str]:
    """The real app under uvicorn in a thread: parked readers need real sockets."""
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=app_url_port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="results-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{app_url_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def seed(api_key_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """A batch of JOBS succeeded jobs with long results, and one job of its own."""
    batch_id, job_id = uuid.uuid4(), uuid.uuid4()
    with session_scope() as session:
        session.execute(
            text("INSERT INTO batches (id, api_key_id, job_count) VALUES (:b, :k, :n)"),
            {"b": batch_id, "k": api_key_id, "n": JOBS},
        )
        session.execute(
            text(
                """
                INSERT INTO jobs (id, batch_id, api_key_id, status, prompt, max_tokens, tier,
                                  result_text, finished_at)
                SELECT gen_random_uuid(), :b, :k, 'succeeded', 'p ' || n, 100, 'haiku',
                       n || ' ' || repeat('r', :size), now()
                  FROM generate_series(1, :n) AS n
                """
            ),
            {"b": batch_id, "k": api_key_id, "n": JOBS, "size": RESULT_BYTES},
        )
        session.execute(
            text(
                "INSERT INTO jobs (id, api_key_id, status, prompt, max_tokens)"
                " VALUES (:j, :k, 'queued', 'alone', 100)"
            ),
            {"j": job_id, "k": api_key_id},
        )
    return batch_id, job_id


@pytest.fixture
def api(clean_db: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setenv("TIERROUTE_DB_POOL_SIZE", str(POOL_SIZE))
    with serve(free_port()) as url:
        key_id, raw = new_key()
        batch_id, job_id = seed(key_id)
        database = clean_db.database_url.rsplit("/", 1)[1]
        yield Api(url, raw, batch_id, job_id, database)


def park(api: Api) -> socket.socket:
    """A reader that asks for the results, reads the response head, then reads no more."""
    port = int(api.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(
        f"GET /v1/batches/{api.batch_id}/results HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {api.token}\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(1)  # byte by byte: nothing of the body is taken
        assert data, f"connection closed after {head!r}"
        head += data
    assert head.startswith(b"HTTP/1.1 200 "), head
    return sock


def read_to_end(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes or ends the chunked body."""
    raw = bytearray()
    while not raw.endswith(b"\r\n0\r\n\r\n"):
        data = sock.recv(1 << 16)
        if not data:
            break
        raw += data
    return bytes(raw)


def dechunk(raw: bytes) -> tuple[bytes, bool]:
    """The body of a chunked transfer, and whether it ended with the last chunk."""
    body, at = bytearray(), 0
    while at < len(raw):
        end = raw.find(b"\r\n", at)
        if end < 0:  # cut inside a chunk's size line
            break
        size = int(raw[at:end], 16)
        if size == 0:
            return bytes(body), True
        body += raw[end + 2 : end + 2 + size]
        at = end + 2 + size + 2
    return bytes(body), False


def in_transaction(database: str) -> list[tuple[object, ...]]:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as conn:
        return conn.execute(
            "SELECT pid, state, query FROM pg_stat_activity"
            " WHERE datname = %s AND state LIKE 'idle in transaction%%'",
            (database,),
        ).fetchall()


def assert_none_in_transaction_soon(database: str, within_s: float = 5) -> None:
    deadline = time.monotonic() + within_s
    while (left := in_transaction(database)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == []


def test_parked_readers_beyond_the_pool_leave_the_api_answering(api: Api) -> None:
    with ExitStack() as stack:
        readers = []
        for _ in range(READERS):
            reader = park(api)
            stack.callback(reader.close)
            readers.append(reader)

        # More streams open than the pool has connections, and the API still answers.
        with httpx.Client(base_url=api.url, headers=bearer(api.token), timeout=60) as client:
            assert client.get("/healthz").status_code == 200
            job = client.get(f"/v1/jobs/{api.job_id}")
            assert job.status_code == 200, job.text
            assert job.json()["status"] == "queued"
        # Between pages a stream holds no transaction, open or idle. A page being read
        # right now is one for a moment (its statements run back to back), so the
        # check allows a few seconds; a stream that held one stayed for minutes.
        assert_none_in_transaction_soon(api.database)

        # A parked reader that reads again gets every finished job, each once.
        body, complete = dechunk(read_to_end(readers[0]))
        assert complete
        lines = [json.loads(line) for line in body.decode().splitlines()]
        assert len(lines) == JOBS
        assert len({line["id"] for line in lines}) == JOBS
        assert all(line["status"] == "succeeded" for line in lines)

    # The readers have hung up: within moments no connection is left in a transaction.
    assert_none_in_transaction_soon(api.database)


def test_readers_that_hang_up_leave_no_transaction_open(api: Api) -> None:
    with ExitStack() as stack:
        for _ in range(POOL_CONNECTIONS - 1):  # within the pool: each stream gets going
            stack.callback(park(api).close)
    assert_none_in_transaction_soon(api.database)


def test_a_reader_that_stops_reading_is_dropped(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("api.results_stream.WRITE_TIMEOUT_S", 0.5)
    caplog.set_level(logging.WARNING, logger="api.results_stream")
    with park(api) as reader:
        deadline = time.monotonic() + 30
        while "took no write" not in caplog.text:
            assert time.monotonic() < deadline, "the stalled reader was never dropped"
            time.sleep(0.1)
        # What was buffered, then the connection closes, without the last chunk: the
        # client knows its stream was cut.
        body, complete = dechunk(read_to_end(reader))
    assert not complete
    assert 0 < body.count(b"\n") < JOBS


def test_results_are_the_job_views_as_ever_across_pages(
    clean_db: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Byte for byte what GET /v1/jobs/{id} gives for each, in creation then id order."""
    monkeypatch.setattr("tierroute.store.results.PAGE_SIZE", 2)  # several pages
    app = create_app()
    app.dependency_overrides[get_enqueuer] = NoBroker
    client = TestClient(app)
    client.__enter__()  # the app's lifespan starts the engine the seeding uses
    try:
        results_match_job_views(client)
    finally:
        client.__exit__(None, None, None)


def results_match_job_views(client: TestClient) -> None:
    key_id, raw = new_key()
    batch_id = uuid.uuid4()
    with session_scope() as session:
        session.execute(
            text("INSERT INTO batches (id, api_key_id, job_count) VALUES (:b, :k, 9)"),
            {"b": batch_id, "k": key_id},
        )
        # Nine jobs, every status, three creation times; routing and calls on some.
        session.execute(
            text(
                """
                INSERT INTO jobs (id, batch_id, api_key_id, status, prompt, max_tokens, tier,
                                  result_text, error, metadata, attempts, created_at,
                                  classified_at, started_at, finished_at)
                SELECT gen_random_uuid(), :b, :k,
                       (ARRAY['succeeded','failed','dead','cancelled','running','queued'])
                         [1 + n % 6],
                       'p', 100, 'sonnet', 'answer ' || n || ' "quoted" é', 'e' || n,
                       CASE WHEN n % 2 = 0 THEN jsonb_build_object('n', n) END, n % 3,
                       '2026-01-01 00:00:00+00'::timestamptz + (n % 3) * interval '1 us',
                       now(), now(), CASE WHEN n % 6 < 4 THEN now() END
                  FROM generate_series(1, 9) AS n
                """
            ),
            {"b": batch_id, "k": key_id},
        )
        session.execute(
            text(
                """
                INSERT INTO routing_decisions (job_id, tier, proposed_tier, confidence, score,
                                               reasoning, classifier, cost_ratio)
                SELECT id, 'sonnet', 'haiku', 0.62, 0.5, 'why', 'hybrid', 0.6
                  FROM jobs WHERE batch_id = :b AND attempts > 0
                """
            ),
            {"b": batch_id},
        )
        for purpose, model in (("classify", "haiku-m"), ("complete", "s-1"), ("complete", "s-2")):
            session.execute(
                text(
                    """
                    INSERT INTO model_calls (job_id, purpose, model, tier, input_tokens,
                        output_tokens, cache_creation_input_tokens, cache_read_input_tokens,
                        cost_usd, cost_if_opus_usd, latency_ms, stop_reason, simulated,
                        batch_api)
                    SELECT id, :p, :m, 'sonnet', 11, 22, 3, 4, 0.000123, 0.000456, 78,
                           'end_turn', true, false
                      FROM jobs WHERE batch_id = :b AND status <> 'cancelled'
                    """
                ),
                {"b": batch_id, "p": purpose, "m": model},
            )
    with session_scope() as session:
        finished = session.scalars(
            select(Job.id)
            .where(Job.batch_id == batch_id, Job.status.in_(FINISHED))
            .order_by(Job.created_at, Job.id)
        ).all()
        expected = "".join(json.dumps(read_job_view(i)) + "\n" for i in finished)
    assert len(finished) == 7  # running and queued ones are not results yet

    response = client.get(f"/v1/batches/{batch_id}/results", headers=bearer(raw))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.content == expected.encode()
