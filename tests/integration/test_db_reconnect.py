"""The workers' pool runs without pre-ping: a broken connection must not outlive one error."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import Services
from tierroute.config import get_settings
from tierroute.store import engine as db

pytestmark = pytest.mark.integration


@pytest.fixture
def worker_engine(env: Services) -> Iterator[Services]:
    db.init_engine(get_settings(), pre_ping=False)
    yield env
    db.dispose_engine()


def backend_pids(count: int) -> list[int]:
    """Check out `count` pooled connections at once and return their server pids."""
    stack = [db.raw_transaction() for _ in range(count)]
    cursors = [context.__enter__() for context in stack]
    pids = []
    for cur in cursors:
        cur.execute("SELECT pg_backend_pid()")
        pids.append(cur.fetchone()[0])
    for context in reversed(stack):
        context.__exit__(None, None, None)
    return pids


def test_a_terminated_server_costs_one_error_then_the_pool_is_fresh(
    worker_engine: Services,
) -> None:
    pids = backend_pids(3)  # three pooled connections, as after a burst of tasks
    admin = worker_engine.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        for pid in pids:  # what a Postgres restart does to them
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(psycopg.OperationalError), db.raw_transaction() as cur:
        cur.execute("SELECT 1")
    # Without pre-ping, only the pool-wide invalidation keeps the other two dead
    # connections from failing the next two transactions.
    for _ in range(3):
        with db.raw_transaction() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone()[0] == 1
