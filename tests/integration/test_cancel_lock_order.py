"""A batch's cancel and a classify chunk lock their jobs in id order (issue 16).

Two statements that lock the same rows deadlock only if each can hold a row the
other waits for; locked in one order, a statement waiting for a row holds only
rows before it. Each test holds one job of the middle from another transaction
and looks, while the statement waits for it, at which rows it already holds.
The jobs are stored in descending id order, so a statement locking in scan order
(as the cancel did, and deadlocked with the classify chunks) holds the others.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from tests.conftest import Services, clear_settings_caches
from tierroute.pipeline.steps import decide
from tierroute.runtime import get_runtime
from tierroute.store import transitions
from tierroute.store.engine import raw_autocommit, session_scope
from tierroute.store.jobs import cancel_batch

pytestmark = pytest.mark.integration

JOBS = 40


def plain(database_url: str) -> str:
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def batch(clean_db: Services) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A batch of queued jobs, stored in descending id order; its id and the job ids."""
    batch_id = uuid.uuid4()
    ids = sorted((uuid.uuid4() for _ in range(JOBS)), reverse=True)
    with psycopg.connect(plain(clean_db.database_url)) as conn:
        conn.execute("INSERT INTO batches (id, job_count) VALUES (%s, %s)", (batch_id, JOBS))
        for job_id in ids:
            conn.execute(
                "INSERT INTO jobs (id, batch_id, status, prompt, max_tokens) "
                "VALUES (%s, %s, 'queued', 'Convert 5 km to miles.', 64)",
                (job_id, batch_id),
            )
    return batch_id, sorted(ids)


@pytest.fixture
def blocker(clean_db: Services) -> Iterator[psycopg.Connection]:
    with psycopg.connect(plain(clean_db.database_url)) as conn:
        yield conn
        conn.rollback()


def held_while_waiting(
    database_url: str,
    blocker: psycopg.Connection,
    ids: list[uuid.UUID],
    statement: Callable[[], object],
) -> tuple[set[uuid.UUID], list[object]]:
    """Jobs `statement` holds while it waits for the middle job; and what it returned."""
    middle = ids[len(ids) // 2]
    blocker.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", (middle,))
    (blocker_pid,) = blocker.execute("SELECT pg_backend_pid()").fetchone() or (0,)
    outcome: list[object] = []
    runner = threading.Thread(target=lambda: outcome.append(statement()))
    runner.start()
    with psycopg.connect(plain(database_url), autocommit=True) as probe:
        deadline = time.monotonic() + 30
        while not probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
            (blocker_pid,),
        ).fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < deadline, "the statement never waited for the middle job"
            time.sleep(0.02)
        with probe.transaction():
            free = {
                row[0]
                for row in probe.execute(
                    "SELECT id FROM jobs WHERE id = ANY(%s) AND id <> %s FOR UPDATE SKIP LOCKED",
                    (ids, middle),
                )
            }
    blocker.rollback()
    runner.join(30)
    assert not runner.is_alive()
    return set(ids) - free - {middle}, outcome


def test_cancel_locks_the_batch_in_id_order(
    clean_db: Services, batch: tuple[uuid.UUID, list[uuid.UUID]], blocker: psycopg.Connection
) -> None:
    batch_id, ids = batch
    get_runtime()  # the engine

    def cancel() -> int:
        with session_scope() as session:
            return cancel_batch(session, batch_id)

    held, outcome = held_while_waiting(clean_db.database_url, blocker, ids, cancel)
    assert held == set(ids[: len(ids) // 2])  # only the jobs before the one it waits for
    assert outcome == [JOBS]


def test_a_classify_chunk_locks_its_jobs_in_id_order(
    clean_db: Services,
    batch: tuple[uuid.UUID, list[uuid.UUID]],
    blocker: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, ids = batch
    monkeypatch.setenv("TIERROUTE_CLASSIFIER", "local")
    clear_settings_caches()
    rt = get_runtime()
    # The chunk in the order the feeder sent it, not sorted.
    chunk = sorted(ids, key=lambda job_id: job_id.hex[::-1])
    decisions = [(job_id, decide(rt, "Convert 5 km to miles.", None, "haiku")) for job_id in chunk]

    def route() -> set[uuid.UUID]:
        with raw_autocommit() as cur:
            return transitions.route_queued(cur, decisions)

    held, outcome = held_while_waiting(clean_db.database_url, blocker, ids, route)
    assert held == set(ids[: len(ids) // 2])
    assert outcome == [set(ids)]
